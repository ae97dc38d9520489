package authn

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

var emptyHash = hex.EncodeToString(func() []byte { s := sha256.Sum256(nil); return s[:] }())

// received turns a client request into what a server receives.
func received(t *testing.T, method, rawURL string, h http.Header) *http.Request {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(method, u.RequestURI(), nil)
	r.Host = u.Host
	for k, vs := range h {
		if !strings.EqualFold(k, "host") {
			r.Header[k] = vs
		}
	}
	return r
}

func presignSTS(t *testing.T, creds aws.Credentials, at time.Time, query string, header http.Header) *http.Request {
	t.Helper()
	req, err := http.NewRequest("GET", "https://sts.us-east-1.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15"+query, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	u, signed, err := v4.NewSigner().PresignHTTP(t.Context(), creds, req, emptyHash, "sts", "us-east-1", at)
	if err != nil {
		t.Fatal(err)
	}
	return received(t, "GET", u, signed)
}

func TestParseSigV4Presigned(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	user := aws.Credentials{AccessKeyID: "AKIDUSER", SecretAccessKey: "user-secret"}
	role := aws.Credentials{AccessKeyID: "ASIAROLE", SecretAccessKey: "role-secret", SessionToken: "tok+en/="}
	for _, tc := range []struct {
		name    string
		creds   aws.Credentials
		query   string
		header  http.Header
		edit    func(*http.Request)
		secret  string
		expires time.Duration
		ok      bool // signature verifies
	}{
		{name: "user", creds: user, secret: "user-secret", ok: true},
		{name: "session token in the query", creds: role, secret: "role-secret", ok: true},
		{name: "X-Amz-Expires", creds: user, query: "&X-Amz-Expires=60", secret: "user-secret", expires: time.Minute, ok: true},
		{name: "signed extra header", creds: role, header: http.Header{"X-Bedrock-Gateway-Id": {"gw-1"}}, secret: "role-secret", ok: true},
		{name: "extra header missing", creds: role, header: http.Header{"X-Bedrock-Gateway-Id": {"gw-1"}}, secret: "role-secret",
			edit: func(r *http.Request) { r.Header.Del("X-Bedrock-Gateway-Id") }},
		{name: "wrong secret", creds: user, secret: "other"},
		{name: "other host", creds: user, secret: "user-secret", edit: func(r *http.Request) { r.Host = "evil.example" }},
		{name: "added parameter", creds: user, secret: "user-secret", edit: func(r *http.Request) { r.RequestURI += "&Action=AssumeRole" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := presignSTS(t, tc.creds, at, tc.query, tc.header)
			if tc.edit != nil {
				tc.edit(r)
			}
			s, err := ParseSigV4(r)
			if err != nil {
				t.Fatal(err)
			}
			if !s.Presigned || s.AccessKeyID != tc.creds.AccessKeyID || s.Service != "sts" || s.Region != "us-east-1" ||
				s.SecurityToken != tc.creds.SessionToken || !s.SignedAt.Equal(at) || s.Expires != tc.expires {
				t.Errorf("parsed %+v", s)
			}
			if got := s.Verify(r, tc.secret, emptyHash); got != tc.ok {
				t.Errorf("Verify = %v, want %v", got, tc.ok)
			}
		})
	}
}

func TestParseSigV4Header(t *testing.T) {
	t.Parallel()
	at := time.Now().UTC()
	body := "Action=GetCallerIdentity&Version=2011-06-15"
	sum := sha256.Sum256([]byte(body))
	hash := hex.EncodeToString(sum[:])
	req, _ := http.NewRequest("POST", "https://sts.amazonaws.com/", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	creds := aws.Credentials{AccessKeyID: "ASIAROLE", SecretAccessKey: "s", SessionToken: "t"}
	if err := v4.NewSigner().SignHTTP(t.Context(), creds, req, hash, "sts", "us-east-1", at); err != nil {
		t.Fatal(err)
	}
	r := received(t, "POST", req.URL.String(), req.Header)
	r.ContentLength = int64(len(body)) // the signer signed content-length
	s, err := ParseSigV4(r)
	if err != nil {
		t.Fatal(err)
	}
	if s.Presigned || s.AccessKeyID != "ASIAROLE" || s.SecurityToken != "t" || s.Service != "sts" {
		t.Errorf("parsed %+v", s)
	}
	if !s.Verify(r, "s", hash) {
		t.Error("a good signature does not verify")
	}
	if s.Verify(r, "s", emptyHash) {
		t.Error("a signature verifies over another body")
	}
}

func TestParseSigV4Refusals(t *testing.T) {
	t.Parallel()
	good := url.Values{
		"X-Amz-Algorithm":     {"AWS4-HMAC-SHA256"},
		"X-Amz-Credential":    {"AKID/20260301/us-east-1/sts/aws4_request"},
		"X-Amz-Date":          {"20260301T120000Z"},
		"X-Amz-SignedHeaders": {"host"},
		"X-Amz-Signature":     {strings.Repeat("ab", 32)},
	}
	with := func(k string, vs ...string) string {
		q := url.Values{}
		for kk, v := range good {
			q[kk] = v
		}
		if vs == nil {
			delete(q, k)
		} else {
			q[k] = vs
		}
		return q.Encode()
	}
	for _, tc := range []struct {
		name, query string
		auth        []string
		want        error
	}{
		{"nothing", "Action=GetCallerIdentity", nil, ErrSigV4Missing},
		{"no signature", with("X-Amz-Signature"), nil, ErrSigV4Malformed},
		{"duplicate signature", with("X-Amz-Signature", strings.Repeat("ab", 32), strings.Repeat("cd", 32)), nil, ErrSigV4Malformed},
		{"duplicate token", with("X-Amz-Security-Token", "a", "b"), nil, ErrSigV4Malformed},
		{"other algorithm", with("X-Amz-Algorithm", "AWS4-ECDSA-P256-SHA256"), nil, ErrSigV4Malformed},
		{"scope date differs", with("X-Amz-Date", "20260302T120000Z"), nil, ErrSigV4Malformed},
		{"bad date", with("X-Amz-Date", "2026-03-01T12:00:00Z"), nil, ErrSigV4Malformed},
		{"host not signed", with("X-Amz-SignedHeaders", "x-amz-date"), nil, ErrSigV4Malformed},
		{"bad terminator", with("X-Amz-Credential", "AKID/20260301/us-east-1/sts/aws5_request"), nil, ErrSigV4Malformed},
		{"short signature", with("X-Amz-Signature", "abcd"), nil, ErrSigV4Malformed},
		{"expires zero", with("X-Amz-Expires", "0"), nil, ErrSigV4Malformed},
		{"expires signed", with("X-Amz-Expires", "+60"), nil, ErrSigV4Malformed},
		{"expires above 7 days", with("X-Amz-Expires", "604801"), nil, ErrSigV4Malformed},
		{"header and query", with("X-Amz-Expires", "60"), []string{"AWS4-HMAC-SHA256 Credential=x"}, ErrSigV4Malformed},
		{"two headers", "", []string{"a", "b"}, ErrSigV4Malformed},
		{"bad header", "", []string{"AWS4-HMAC-SHA256 Credential=x"}, ErrSigV4Malformed},
		{"undecodable query", with("X-Amz-Expires", "60") + "&%zz", nil, ErrSigV4Malformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest("GET", "/?"+tc.query, nil)
			r.Header["Authorization"] = tc.auth
			if _, err := ParseSigV4(r); !errors.Is(err, tc.want) {
				t.Errorf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestSigV4RequestCheckTime(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	const skew, age = 5 * time.Minute, 15 * time.Minute
	for _, tc := range []struct {
		name      string
		presigned bool
		expires   time.Duration
		now       time.Time
		want      error
	}{
		{"header now", false, 0, at, nil},
		{"header at the skew", false, 0, at.Add(skew), nil},
		{"header past the skew", false, 0, at.Add(skew + time.Second), ErrSigV4Expired},
		{"header ahead", false, 0, at.Add(-skew - time.Second), ErrSigV4NotYetValid},
		{"presigned at max age", true, 0, at.Add(age), nil},
		{"presigned past max age", true, 0, at.Add(age + time.Second), ErrSigV4Expired},
		{"presigned within expires", true, time.Minute, at.Add(time.Minute), nil},
		{"presigned past expires", true, time.Minute, at.Add(time.Minute + time.Second), ErrSigV4Expired},
		{"presigned expires above max age", true, time.Hour, at.Add(age + time.Second), ErrSigV4Expired},
		{"presigned ahead within skew", true, 0, at.Add(-skew), nil},
		{"presigned ahead", true, 0, at.Add(-skew - time.Second), ErrSigV4NotYetValid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := &SigV4Request{AmzDate: at.Format(amzDateFormat), SignedAt: at, Presigned: tc.presigned, Expires: tc.expires}
			if err := s.CheckTime(tc.now, skew, age); !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Errorf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestDropQueryParam(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"a=1&X-Amz-Signature=ff&b=2", "a=1&b=2"},
		{"X-Amz-Signature=ff", ""},
		{"X%2DAmz-Signature=ff&a=1", "a=1"},
		{"a=X-Amz-Signature", "a=X-Amz-Signature"},
	} {
		if got := dropQueryParam(tc.in, "X-Amz-Signature"); got != tc.want {
			t.Errorf("dropQueryParam(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// FuzzParseSigV4 drives the presigned-query parser: it never panics, and what
// it accepts is well formed.
func FuzzParseSigV4(f *testing.F) {
	f.Add("Action=GetCallerIdentity&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKID%2F20260301%2Fus-east-1%2Fsts%2Faws4_request" +
		"&X-Amz-Date=20260301T120000Z&X-Amz-SignedHeaders=host&X-Amz-Signature=" + strings.Repeat("ab", 32) + "&X-Amz-Expires=60")
	f.Add("X-Amz-Signature=&X-Amz-Signature=")
	f.Add("X-Amz-Algorithm=%zz")
	f.Fuzz(func(t *testing.T, query string) {
		r := httptest.NewRequest("GET", "/", nil)
		r.RequestURI = "/?" + query
		s, err := ParseSigV4(r)
		if err != nil {
			return
		}
		if s.AccessKeyID == "" || len(s.AmzDate) != 16 || s.Date != s.AmzDate[:8] || s.Expires < 0 || s.Expires > MaxPresignExpires {
			t.Fatalf("accepted %q as %+v", query, s)
		}
		_ = s.Verify(r, "secret", emptyHash)
	})
}
