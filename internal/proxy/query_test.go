package proxy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// memberRequest sends a request hand-signed with the development member's
// key: for inputs an SDK would never produce. tamper, when set, changes the
// request after signing.
func (h *harness) memberRequest(t *testing.T, method, target string, body []byte, header http.Header, tamper func(*http.Request)) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, h.gateway.URL+target, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body == nil {
		req.Body = http.NoBody
	}
	for k, vv := range header {
		req.Header[k] = vv
	}
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: devAKID, SecretAccessKey: devSecret}, req,
		hex.EncodeToString(sum[:]), "bedrock", "us-east-1", time.Now()); err != nil {
		t.Fatal(err)
	}
	if tamper != nil {
		tamper(req)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// A member's query string must not travel upstream next to the hub's
// signature: only the parameters an operation defines are forwarded.
func TestQueryStringFiltered(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	const smuggled = "X-Amz-Credential=AKIDMEMBER%2F20260101%2Fus-east-1%2Fbedrock%2Faws4_request&X-Amz-Security-Token=member-token&X-Amz-Signature=abc"
	converse := []byte(`{"messages":[{"role":"user","content":[{"text":"hi"}]}],"inferenceConfig":{"maxTokens":3}}`)
	for _, tc := range []struct {
		name, method, target string
		body                 []byte
		wantQuery            string
	}{
		{"Converse", "POST", "/model/support-llm/converse?" + smuggled, converse, ""},
		{"InvokeModel", "POST", "/model/support-llm/invoke?" + smuggled + "&trace=ENABLED",
			[]byte(`{"anthropic_version":"bedrock-2023-05-31","max_tokens":3,"messages":[{"role":"user","content":"hi"}]}`), ""},
		{"ListAsyncInvokes", "GET", "/async-invoke?" + smuggled + "&maxResults=2&sortOrder=Ascending", nil, "maxResults=2&sortOrder=Ascending"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h.sim.Reset()
			header := http.Header{"Content-Type": {"application/json"}}
			resp := h.memberRequest(t, tc.method, tc.target, tc.body, header, nil)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d (%s)", resp.StatusCode, resp.Header.Get("X-Amzn-Errortype"))
			}
			obs := lastObserved(t, h.sim)
			if obs.RawQuery != tc.wantQuery {
				t.Fatalf("upstream query %q, want %q", obs.RawQuery, tc.wantQuery)
			}
		})
	}
	t.Run("malformed", func(t *testing.T) {
		h.sim.Reset()
		resp := h.memberRequest(t, "POST", "/model/support-llm/converse", converse, http.Header{"Content-Type": {"application/json"}},
			func(r *http.Request) { r.URL.RawQuery = "a=%zz&X-Amz-Security-Token=x" })
		if resp.StatusCode < 400 || resp.StatusCode >= 500 {
			t.Fatalf("status %d (%s)", resp.StatusCode, resp.Header.Get("X-Amzn-Errortype"))
		}
		if n := len(h.sim.Requests()); n != 0 {
			t.Fatalf("a malformed query reached the upstream (%d requests)", n)
		}
	})
}
