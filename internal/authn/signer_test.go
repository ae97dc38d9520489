package authn

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

const (
	hubAKID   = "AKIAHUBEXAMPLE000001"
	hubSecret = "hub-secret-0123456789abcdefghijklmnopqrstuv"
)

// sdkSigned signs a copy of r with the SDK's signer and returns it.
func sdkSigned(t testing.TB, r *http.Request, creds SigningCredentials, hash, service, region string, at time.Time) *http.Request {
	t.Helper()
	c := r.Clone(context.Background())
	if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: creds.AccessKeyID, SecretAccessKey: creds.SecretAccessKey, SessionToken: creds.SessionToken},
		c, hash, service, region, at); err != nil {
		t.Fatal(err)
	}
	return c
}

func upstreamRequest(t testing.TB, method, url string, hdr map[string][]string, length int64) *http.Request {
	t.Helper()
	r, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		r.Header[k] = v
	}
	r.ContentLength = length
	return r
}

// TestSignerMatchesSDK: the signer's headers are the SDK signer's, byte for
// byte, across the shapes the gateway sends upstream.
func TestSignerMatchesSDK(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 30, 17, 4, 5, 0, time.UTC)
	base := SigningCredentials{AccessKeyID: hubAKID, SecretAccessKey: hubSecret}
	session := SigningCredentials{AccessKeyID: "ASIAHUB", SecretAccessKey: hubSecret, SessionToken: "FwoGZXIvYXdzEJr//////////token"}
	for _, tc := range []struct {
		name   string
		method string
		url    string
		host   string
		hdr    map[string][]string
		length int64
		creds  SigningCredentials
		region string
		hash   string
	}{
		{name: "converse", method: "POST", url: "https://bedrock-runtime.us-east-1.amazonaws.com/model/anthropic.claude-3-5-haiku-20241022-v1%3A0/converse",
			hdr: map[string][]string{"Content-Type": {"application/json"}, "Accept": {"application/json"}}, length: 120, creds: base, region: "us-east-1", hash: emptyHash},
		{name: "stream with trace context and ignored headers", method: "POST", url: "https://bedrock-runtime.eu-west-1.amazonaws.com/model/m/converse-stream",
			hdr: map[string][]string{"Content-Type": {"application/json"}, "Traceparent": {"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
				"User-Agent": {"aws-sdk-go-v2/1.0"}, "X-Amzn-Trace-Id": {"Root=1"}, "Expect": {"100-continue"}, "Transfer-Encoding": {"chunked"},
				"X-Amzn-Bedrock-Guardrailidentifier": {"gr-1"}, "X-Amzn-Bedrock-Trace": {"ENABLED"}},
			length: 42, creds: base, region: "eu-west-1", hash: emptyHash},
		{name: "session token, multiple and spaced values", method: "POST", url: "https://bedrock-runtime.us-west-2.amazonaws.com/model/m/invoke",
			hdr:    map[string][]string{"Content-Type": {"application/json"}, "X-Custom": {"  a   b  ", "c\t", ""}, "X-Empty": {}},
			length: 7, creds: session, region: "us-west-2", hash: emptyHash},
		{name: "no body, non-default port", method: "GET", url: "http://127.0.0.1:8081/async-invoke/arn%3Aaws%3Abedrock%3Aus-east-1%3A1%3Aasync-invoke%2Fabc",
			creds: base, region: "us-east-1", hash: emptyHash, length: 0},
		{name: "default port stripped", method: "POST", url: "https://bedrock-runtime.us-east-1.amazonaws.com:443/model/m/converse",
			creds: base, region: "us-east-1", hash: emptyHash, length: -1},
		{name: "explicit host with default port", method: "POST", url: "http://10.0.0.1/model/m/converse", host: "bedrock.internal:80",
			creds: base, region: "us-east-1", hash: emptyHash, length: 3},
		{name: "ipv6 host", method: "POST", url: "http://[::1]:9000/model/m/converse", creds: base, region: "us-east-1", hash: emptyHash, length: 3},
		{name: "streaming events marker", method: "POST", url: "https://bedrock-runtime.us-east-1.amazonaws.com/model/m/invoke-with-bidirectional-stream",
			hdr:    map[string][]string{"X-Amz-Content-Sha256": {StreamingEvents}, "Content-Type": {"application/vnd.amazon.eventstream"}},
			length: -1, creds: base, region: "us-east-1", hash: StreamingEvents},
		{name: "stale date and signature replaced", method: "POST", url: "https://bedrock-runtime.us-east-1.amazonaws.com/model/m/converse",
			hdr:    map[string][]string{"X-Amz-Date": {"20200101T000000Z"}, "Authorization": {"AWS4-HMAC-SHA256 old"}},
			length: 3, creds: base, region: "us-east-1", hash: emptyHash},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := upstreamRequest(t, tc.method, tc.url, tc.hdr, tc.length)
			r.Host = tc.host
			want := sdkSigned(t, r, tc.creds, tc.hash, "bedrock", tc.region, at)
			s := NewSigner()
			for range 2 { // the second time from the key cache
				got := r.Clone(context.Background())
				if !s.SignHTTP(tc.creds, got, tc.hash, "bedrock", tc.region, at) {
					t.Fatal("SignHTTP refused the request")
				}
				compareSigned(t, got, want)
			}
		})
	}
}

func compareSigned(t *testing.T, got, want *http.Request) {
	t.Helper()
	for _, h := range []string{"Authorization", "X-Amz-Date", "X-Amz-Security-Token"} {
		if g, w := got.Header.Values(h), want.Header.Values(h); strings.Join(g, "|") != strings.Join(w, "|") {
			t.Errorf("%s:\n got %q\nwant %q", h, g, w)
		}
	}
	if got.Host != want.Host {
		t.Errorf("Host %q, want %q", got.Host, want.Host)
	}
}

// TestSignerKeyCache: keys are derived per secret, date, region and service;
// a day's roll-over and a rotated secret sign with the right key (the SDK,
// deriving afresh, agrees), and the cache stays bounded.
func TestSignerKeyCache(t *testing.T) {
	t.Parallel()
	s := NewSigner()
	r := upstreamRequest(t, "POST", "https://bedrock-runtime.us-east-1.amazonaws.com/model/m/converse", map[string][]string{"Content-Type": {"application/json"}}, 5)
	beforeMidnight := time.Date(2026, 12, 31, 23, 59, 59, 0, time.UTC)
	afterMidnight := beforeMidnight.Add(2 * time.Second)
	rotated := SigningCredentials{AccessKeyID: hubAKID, SecretAccessKey: hubSecret + "-rotated"}
	base := SigningCredentials{AccessKeyID: hubAKID, SecretAccessKey: hubSecret}
	steps := []struct {
		creds   SigningCredentials
		at      time.Time
		region  string
		service string
	}{
		{base, beforeMidnight, "us-east-1", "bedrock"},
		{base, afterMidnight, "us-east-1", "bedrock"},  // a new day: a new key
		{base, beforeMidnight, "us-east-1", "bedrock"}, // a late one for yesterday still right
		{rotated, afterMidnight, "us-east-1", "bedrock"},
		{base, afterMidnight, "us-east-1", "bedrock"}, // back to the old secret
		{base, afterMidnight, "eu-central-1", "bedrock"},
		{base, afterMidnight, "us-east-1", "sts"},
		{base, afterMidnight, "us-east-1", "bedrock"},
	}
	for i, st := range steps {
		got := r.Clone(context.Background())
		if !s.SignHTTP(st.creds, got, emptyHash, st.service, st.region, st.at) {
			t.Fatal("refused")
		}
		want := sdkSigned(t, r, st.creds, emptyHash, st.service, st.region, st.at)
		if g, w := got.Header.Get("Authorization"), want.Header.Get("Authorization"); g != w {
			t.Errorf("step %d: got %q\nwant %q", i, g, w)
		}
	}
	if n := s.keys.len(); n > signerKeyEntries {
		t.Errorf("cache holds %d keys", n)
	}
	// Different secrets under one key ID never share a key.
	k1 := s.keys.get(hubAKID, hubSecret, "20270101", "us-east-1", "bedrock")
	k2 := s.keys.get(hubAKID, hubSecret+"-rotated", "20270101", "us-east-1", "bedrock")
	if bytes.Equal(k1, k2) {
		t.Error("two secrets, one key")
	}
}

func TestSignerRefusesQueries(t *testing.T) {
	t.Parallel()
	s := NewSigner()
	for _, tc := range []struct {
		url string
		hdr map[string][]string
	}{
		{url: "https://h/async-invoke?maxResults=10"},
		{url: "https://h/model/m/converse", hdr: map[string][]string{"x-lower": {"v"}}},
	} {
		r := upstreamRequest(t, "GET", tc.url, tc.hdr, 0)
		if s.SignHTTP(SigningCredentials{AccessKeyID: "A", SecretAccessKey: "s"}, r, emptyHash, "bedrock", "us-east-1", time.Now()) {
			t.Errorf("%s: signed", tc.url)
		}
		if r.Header.Get("Authorization") != "" || r.Header.Get("X-Amz-Date") != "" {
			t.Errorf("%s: headers changed although refused", tc.url)
		}
	}
}

// FuzzSignerMatchesSDK compares the signer with the SDK's on arbitrary
// header values, paths and hosts.
func FuzzSignerMatchesSDK(f *testing.F) {
	f.Add("/model/m/converse", "bedrock-runtime.us-east-1.amazonaws.com", "application/json", "  a  b ", int64(10))
	f.Add("/model/a%3Ab/invoke", "h:443", "x\ty", "", int64(0))
	f.Fuzz(func(t *testing.T, path, host, v1, v2 string, length int64) {
		r, err := http.NewRequest("POST", "https://placeholder"+path, nil)
		if err != nil || r.URL.RawQuery != "" || r.URL.Opaque != "" || r.URL.ForceQuery {
			return
		}
		r.Host = host
		r.Header["Content-Type"] = []string{v1}
		r.Header["X-Amzn-Bedrock-Trace"] = []string{v2, v1}
		r.ContentLength = length
		at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
		creds := SigningCredentials{AccessKeyID: hubAKID, SecretAccessKey: hubSecret}
		want := sdkSigned(t, r, creds, emptyHash, "bedrock", "us-east-1", at)
		got := r.Clone(context.Background())
		if !NewSigner().SignHTTP(creds, got, emptyHash, "bedrock", "us-east-1", at) {
			t.Fatal("refused")
		}
		compareSigned(t, got, want)
	})
}

// BenchmarkSignUpstream is re-signing one upstream Converse request with the
// hub's credentials: the SDK's signer against this one.
func BenchmarkSignUpstream(b *testing.B) {
	creds := SigningCredentials{AccessKeyID: hubAKID, SecretAccessKey: hubSecret}
	mk := func() *http.Request {
		return upstreamRequest(b, "POST", "https://bedrock-runtime.us-east-1.amazonaws.com/model/anthropic.claude-3-5-haiku-20241022-v1%3A0/converse",
			map[string][]string{"Content-Type": {"application/json"}, "Traceparent": {"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}}, 120)
	}
	at := time.Now()
	b.Run("sdk", func(b *testing.B) {
		sdk := v4.NewSigner()
		ac := aws.Credentials{AccessKeyID: creds.AccessKeyID, SecretAccessKey: creds.SecretAccessKey}
		r := mk()
		b.ReportAllocs()
		for b.Loop() {
			if err := sdk.SignHTTP(context.Background(), ac, r, emptyHash, "bedrock", "us-east-1", at); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("cached", func(b *testing.B) {
		s := NewSigner()
		r := mk()
		b.ReportAllocs()
		for b.Loop() {
			if !s.SignHTTP(creds, r, emptyHash, "bedrock", "us-east-1", at) {
				b.Fatal("refused")
			}
		}
	})
}
