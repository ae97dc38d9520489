package sim

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// Requests the SDK's signer signs, then altered the way an attacker or a
// broken client would: each must be refused, and the unaltered one accepted.
func TestSigV4Check(t *testing.T) {
	t.Parallel()
	signedAt := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	body := []byte(`{"ParentId":"r-ex12"}`)
	sign := func(t *testing.T, region string) *http.Request {
		t.Helper()
		r := httptest.NewRequest(http.MethodPost, "http://sim.local/", bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/x-amz-json-1.1")
		r.Header.Set("X-Amz-Target", OrganizationsTargetPrefix+"ListAccountsForParent")
		sum := sha256.Sum256(body)
		err := v4.NewSigner().SignHTTP(t.Context(), aws.Credentials{AccessKeyID: orgTestKey, SecretAccessKey: orgTestSecret},
			r, hex.EncodeToString(sum[:]), "organizations", region, signedAt)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	check := func(now time.Time) func(*http.Request, []byte) error {
		return NewSigV4Check(SigV4Check{Service: "organizations", Region: "us-east-1",
			Secrets: map[string]string{orgTestKey: orgTestSecret}, Now: func() time.Time { return now }})
	}
	for _, tc := range []struct {
		name     string
		region   string
		now      time.Time
		alter    func(r *http.Request) []byte // returns the body received
		wantType string                       // "" means accepted
	}{
		{"as signed", "us-east-1", signedAt, nil, ""},
		{"within the skew", "us-east-1", signedAt.Add(4 * time.Minute), nil, ""},
		{"body tampered", "us-east-1", signedAt, func(*http.Request) []byte { return []byte(`{"ParentId":"r-zz99"}`) }, "InvalidSignatureException"},
		{"signed header changed", "us-east-1", signedAt, func(r *http.Request) []byte {
			r.Header.Set("X-Amz-Target", OrganizationsTargetPrefix+"DescribeOrganization")
			return body
		}, "InvalidSignatureException"},
		{"host changed", "us-east-1", signedAt, func(r *http.Request) []byte { r.Host = "other.local"; return body }, "InvalidSignatureException"},
		{"query added", "us-east-1", signedAt, func(r *http.Request) []byte { r.URL.RawQuery = "x=1"; return body }, "InvalidSignatureException"},
		{"signed header removed", "us-east-1", signedAt, func(r *http.Request) []byte { r.Header.Del("X-Amz-Target"); return body }, "InvalidSignatureException"},
		{"too old", "us-east-1", signedAt.Add(6 * time.Minute), nil, "InvalidSignatureException"},
		{"from the future", "us-east-1", signedAt.Add(-6 * time.Minute), nil, "InvalidSignatureException"},
		{"other region", "eu-west-1", signedAt, nil, "InvalidSignatureException"},
		{"date header changed", "us-east-1", signedAt, func(r *http.Request) []byte {
			r.Header.Set("X-Amz-Date", signedAt.Add(time.Second).Format("20060102T150405Z"))
			return body
		}, "InvalidSignatureException"},
		{"no date", "us-east-1", signedAt, func(r *http.Request) []byte { r.Header.Del("X-Amz-Date"); return body }, "IncompleteSignatureException"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := sign(t, tc.region)
			got := body
			if tc.alter != nil {
				got = tc.alter(r)
			}
			err := check(tc.now)(r, got)
			if tc.wantType == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			oe, ok := errors.AsType[*orgError](err)
			if !ok || oe.typ != tc.wantType {
				t.Fatalf("got %v, want %s", err, tc.wantType)
			}
		})
	}
}
