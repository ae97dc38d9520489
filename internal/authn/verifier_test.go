package authn

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/bedrock-gateway/gateway/internal/bedrock"
)

// Every signed request in these tests is produced by the official
// aws-sdk-go-v2 signer (or, where stated, by an SDK client), never from
// hand-computed expectations.

const (
	testAKID   = "GWTESTKEY00000000001"
	testSecret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	testHost   = "gateway.example.com"
)

var (
	testNow = time.Date(2026, 1, 1, 0, 10, 0, 0, time.UTC)
	testKey = &Credential{ID: testAKID, Account: "222222222222", Label: "app", Kind: KindSigV4, Secret: testSecret}
	// expiredKey expired one second before testNow.
	expiredKey = &Credential{ID: "GWEXPIRED00000000001", Account: "222222222222", Label: "old", Kind: KindSigV4,
		Secret: "expired-secret", ExpiresAt: testNow.Add(-time.Second)}
	futureKey = &Credential{ID: "GWFUTURE000000000001", Account: "333333333333", Label: "new", Kind: KindSigV4,
		Secret: "future-secret", ExpiresAt: testNow.Add(time.Hour)}
)

func testLookup(t testing.TB) *StaticLookup {
	t.Helper()
	l, err := NewStaticLookup(testKey, expiredKey, futureKey)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func testVerifier() *Verifier {
	return NewVerifier(Options{Now: func() time.Time { return testNow }})
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// signSpec describes one client request and how it is signed.
type signSpec struct {
	method string
	target string // path and query as the SDK puts them on the wire
	body   string
	header http.Header
	// signing
	akid, secret, token string
	service, region     string
	at                  time.Time
	// contentSHA sends and signs X-Amz-Content-Sha256 like the JS SDK; a
	// non-empty literal (UNSIGNED-PAYLOAD) is sent and signed verbatim.
	contentSHA     bool
	contentSHAText string
	// noContentLength leaves content-length out of SignedHeaders, as botocore does.
	noContentLength bool
}

func (s signSpec) withDefaults() signSpec {
	if s.method == "" {
		s.method = http.MethodPost
	}
	if s.akid == "" {
		s.akid = testAKID
	}
	if s.secret == "" {
		s.secret = testSecret
	}
	if s.service == "" {
		s.service = "bedrock"
	}
	if s.region == "" {
		s.region = "us-east-1"
	}
	if s.at.IsZero() {
		s.at = testNow
	}
	return s
}

// clientRequest builds and signs the request with the official signer.
func clientRequest(t testing.TB, s signSpec) *http.Request {
	t.Helper()
	s = s.withDefaults()
	var body io.Reader
	if s.body != "" {
		body = strings.NewReader(s.body)
	}
	req, err := http.NewRequest(s.method, "http://"+testHost+s.target, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range s.header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	payloadHash := sha256Hex([]byte(s.body))
	switch {
	case s.contentSHAText != "":
		payloadHash = s.contentSHAText
		req.Header.Set("X-Amz-Content-Sha256", payloadHash)
	case s.contentSHA:
		req.Header.Set("X-Amz-Content-Sha256", payloadHash)
	}
	length := req.ContentLength
	if s.noContentLength {
		req.ContentLength = -1 // the Go signer then leaves content-length unsigned
	}
	creds := aws.Credentials{AccessKeyID: s.akid, SecretAccessKey: s.secret, SessionToken: s.token}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, payloadHash, s.service, s.region, s.at); err != nil {
		t.Fatal(err)
	}
	req.ContentLength = length
	return req
}

// overTheWire serialises a client request as HTTP/1.1 and parses it as a
// server does, so RequestURI, Host and headers are exactly as received. It
// returns the server-side request and the hash of the body received.
func overTheWire(t testing.TB, req *http.Request) (*http.Request, string) {
	t.Helper()
	var wire bytes.Buffer
	if err := req.Write(&wire); err != nil {
		t.Fatal(err)
	}
	sr, err := http.ReadRequest(bufio.NewReader(&wire))
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(sr.Body)
	if err != nil {
		t.Fatal(err)
	}
	return sr, sha256Hex(body)
}

func authorizationOf(t testing.TB, r *http.Request) SigV4Header {
	t.Helper()
	h, err := ParseAuthorization(r.Header.Get("Authorization"))
	if err != nil {
		t.Fatalf("parsing the signer's own header: %v", err)
	}
	return h
}

func wantBedrockError(t testing.TB, err error, typ, msg string) {
	t.Helper()
	var be *bedrock.Error
	if !errors.As(err, &be) {
		t.Fatalf("error = %v (%T), want *bedrock.Error %s", err, err, typ)
	}
	if be.Type != typ || be.Status != http.StatusForbidden {
		t.Fatalf("error = %s (%d), want %s (403)", be.Type, be.Status, typ)
	}
	if msg != "" && be.Message != msg {
		t.Fatalf("message = %q, want %q", be.Message, msg)
	}
}

const (
	msgMismatch = "The request signature we calculated does not match the signature you provided. " +
		"Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
	msgInvalidToken = "The security token included in the request is invalid."
	msgExpiredToken = "The security token included in the request is expired"
	msgContentSHA   = "The provided 'x-amz-content-sha256' header does not match what was computed."
)

func TestAuthenticateSigV4Valid(t *testing.T) {
	t.Parallel()
	arn := "arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Aapplication-inference-profile%2Fabcd1234efgh"
	tests := []struct {
		name string
		spec signSpec
		cred *Credential
	}{
		{name: "base model", spec: signSpec{target: "/model/anthropic.claude-3-haiku-20240307-v1%3A0/invoke", body: `{"max_tokens":10}`,
			header: http.Header{"Content-Type": {"application/json"}, "Accept": {"application/json"}}}},
		{name: "application inference profile ARN", spec: signSpec{target: "/model/" + arn + "/invoke", body: `{}`}},
		{name: "foundation model ARN", spec: signSpec{target: "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A%3Afoundation-model%2Fcustomer-support-llm/converse", body: `{"messages":[]}`}},
		{name: "inference profile ID stream", spec: signSpec{target: "/model/us.anthropic.claude-3-5-haiku-20241022-v1%3A0/invoke-with-response-stream", body: `{"a":1}`,
			header: http.Header{"X-Amzn-Bedrock-Accept": {"*/*"}, "X-Amzn-Bedrock-Trace": {"ENABLED"}}}},
		{name: "converse-stream", spec: signSpec{target: "/model/amazon.nova-lite-v1%3A0/converse-stream", body: `{"messages":[]}`}},
		{name: "count-tokens", spec: signSpec{target: "/model/anthropic.claude-3-haiku-20240307-v1%3A0/count-tokens", body: `{"input":{}}`}},
		{name: "get async invoke", spec: signSpec{method: http.MethodGet,
			target: "/async-invoke/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Aasync-invoke%2Fabc123def456"}},
		{name: "start async invoke", spec: signSpec{target: "/async-invoke", body: `{"modelId":"x"}`}},
		{name: "guardrail", spec: signSpec{target: "/guardrail/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Aguardrail%2Fgr1234/version/DRAFT/apply", body: `{"source":"INPUT","content":[]}`}},
		{name: "list async invokes query", spec: signSpec{method: http.MethodGet,
			target: "/async-invoke?statusEquals=InProgress&maxResults=10&sortOrder=Descending&submitTimeAfter=2026-01-01T00%3A00%3A00Z&nextToken=a%2Bb%2Fc%3D%3D"}},
		{name: "query repeated keys and special characters", spec: signSpec{method: http.MethodGet,
			target: "/async-invoke?b=2&a=z&a=y&a=a%2Fb&a=a-b&c=x%20y&d=%E2%9C%93&e=&f&g=%21%27%28%29%2A&h=~._-"}},
		{name: "query plus as space", spec: signSpec{method: http.MethodGet, target: "/async-invoke?q=a+b"}},
		{name: "foundation models", spec: signSpec{method: http.MethodGet, target: "/foundation-models"}},
		{name: "path with escaped specials", spec: signSpec{target: "/model/a%20b%21c%7Ed%2B/invoke", body: `{}`}},
		{name: "multi-value header", spec: signSpec{target: "/model/m/invoke", body: `{}`,
			header: http.Header{"X-Custom": {"one", "two  three", " four "}}}},
		{name: "inner whitespace", spec: signSpec{target: "/model/m/invoke", body: `{}`,
			header: http.Header{"X-Amzn-Bedrock-Request-Metadata": {`  {"a":   "b   c"}   `}, "Content-Type": {"application/json"}}}},
		{name: "x-amz-content-sha256 like JS", spec: signSpec{target: "/model/m/converse", body: `{"messages":[]}`, contentSHA: true}},
		{name: "unsigned payload", spec: signSpec{target: "/model/m/converse", body: `{"messages":[]}`, contentSHAText: UnsignedPayload}},
		{name: "session token", spec: signSpec{target: "/model/m/invoke", body: `{}`, token: "FwoGZXIvYXdzEJr//////////wEaDK+token=="}},
		{name: "no content-length like botocore", spec: signSpec{target: "/model/m/invoke", body: `{"x":1}`, noContentLength: true}},
		{name: "other region", spec: signSpec{target: "/model/m/invoke", body: `{}`, region: "eu-central-1"}},
		{name: "govcloud region", spec: signSpec{target: "/model/m/invoke", body: `{}`, region: "us-gov-west-1"}},
		{name: "signed four minutes ago", spec: signSpec{target: "/model/m/invoke", body: `{}`, at: testNow.Add(-4 * time.Minute)}},
		{name: "signed four minutes ahead", spec: signSpec{target: "/model/m/invoke", body: `{}`, at: testNow.Add(4 * time.Minute)}},
		{name: "empty body post", spec: signSpec{target: "/model/m/invoke"}},
		{name: "credential not yet expired", spec: signSpec{target: "/model/m/invoke", body: `{}`, akid: futureKey.ID, secret: futureKey.Secret}, cred: futureKey},
	}
	v := testVerifier()
	lookup := testLookup(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sr, hash := overTheWire(t, clientRequest(t, tc.spec))
			res, err := v.Authenticate(sr, hash, lookup)
			if err != nil {
				t.Fatalf("Authenticate: %v\nAuthorization: %s", err, sr.Header.Get("Authorization"))
			}
			want := tc.cred
			if want == nil {
				want = testKey
			}
			if res.Credential != want {
				t.Errorf("credential = %+v, want %s", res.Credential, want.ID)
			}
			h := authorizationOf(t, sr)
			spec := tc.spec.withDefaults()
			if res.Signature != h.Signature {
				t.Errorf("Signature = %q, want %q", res.Signature, h.Signature)
			}
			if wantScope := spec.at.Format("20060102") + "/" + spec.region + "/bedrock/aws4_request"; res.Scope != wantScope {
				t.Errorf("Scope = %q, want %q", res.Scope, wantScope)
			}
			if res.AmzDate != sr.Header.Get("X-Amz-Date") {
				t.Errorf("AmzDate = %q, want %q", res.AmzDate, sr.Header.Get("X-Amz-Date"))
			}
			if len(res.SigningKey) != 32 {
				t.Errorf("SigningKey has %d bytes", len(res.SigningKey))
			}
			if spec.contentSHAText != "" && res.PayloadHash != spec.contentSHAText {
				t.Errorf("PayloadHash = %q, want %q", res.PayloadHash, spec.contentSHAText)
			}
			if spec.contentSHAText == "" && res.PayloadHash != hash {
				t.Errorf("PayloadHash = %q, want the body's %q", res.PayloadHash, hash)
			}
		})
	}
}

func TestAuthenticateSigV4Refused(t *testing.T) {
	t.Parallel()
	base := signSpec{target: "/model/anthropic.claude-3-haiku-20240307-v1%3A0/invoke?x=1", body: `{"prompt":"hello"}`,
		header: http.Header{"Content-Type": {"application/json"}, "X-Custom": {"a", "b"}}}
	with := func(f func(*signSpec)) signSpec {
		s := base
		s.header = base.header.Clone()
		f(&s)
		return s
	}
	const bad, unrec = "InvalidSignatureException", "UnrecognizedClientException"
	tests := []struct {
		name string
		spec signSpec
		// client changes the signed request before sending
		client func(*http.Request)
		// server changes what arrived (simulating a different server view)
		server  func(*http.Request)
		typ     string
		msg     string
		msgPart string
	}{
		{name: "method", spec: base, client: func(r *http.Request) { r.Method = http.MethodPut }, typ: bad, msg: msgMismatch},
		{name: "path", spec: base, client: func(r *http.Request) {
			r.URL.Path, r.URL.RawPath = "/model/anthropic.claude-3-sonnet-20240229-v1:0/invoke", "/model/anthropic.claude-3-sonnet-20240229-v1%3A0/invoke"
		}, typ: bad, msg: msgMismatch},
		{name: "path escaping", spec: base, client: func(r *http.Request) {
			r.URL.RawPath = "/model/anthropic.claude-3-haiku-20240307-v1:0/invoke"
		}, typ: bad, msg: msgMismatch},
		{name: "query value", spec: base, client: func(r *http.Request) { r.URL.RawQuery = "x=2" }, typ: bad, msg: msgMismatch},
		{name: "query added", spec: base, client: func(r *http.Request) { r.URL.RawQuery += "&y=1" }, typ: bad, msg: msgMismatch},
		{name: "query unparseable", spec: base, client: func(r *http.Request) { r.URL.RawQuery += "&y=%zz" }, typ: bad, msg: msgMismatch},
		{name: "header value", spec: base, client: func(r *http.Request) { r.Header.Set("Content-Type", "text/plain") }, typ: bad, msg: msgMismatch},
		{name: "multi-value order", spec: base, client: func(r *http.Request) { r.Header["X-Custom"] = []string{"b", "a"} }, typ: bad, msg: msgMismatch},
		{name: "signed header removed", spec: base, client: func(r *http.Request) { r.Header.Del("X-Custom") }, typ: bad, msg: msgMismatch},
		{name: "host", spec: base, client: func(r *http.Request) { r.Host = "other.example.com" }, typ: bad, msg: msgMismatch},
		{name: "body same length", spec: base, client: func(r *http.Request) {
			r.Body = io.NopCloser(strings.NewReader(`{"prompt":"HELLO"}`))
		}, typ: bad, msg: msgMismatch},
		{name: "body with content sha", spec: with(func(s *signSpec) { s.contentSHA = true }), client: func(r *http.Request) {
			r.Body = io.NopCloser(strings.NewReader(`{"prompt":"HELLO"}`))
		}, typ: bad, msg: msgContentSHA},
		{name: "body botocore", spec: with(func(s *signSpec) { s.noContentLength = true }), client: func(r *http.Request) {
			r.Body = io.NopCloser(strings.NewReader(`{"prompt":"hi"}`))
			r.ContentLength = int64(len(`{"prompt":"hi"}`))
		}, typ: bad, msg: msgMismatch},
		{name: "date within window", spec: base, client: func(r *http.Request) { r.Header.Set("X-Amz-Date", "20260101T000959Z") }, typ: bad, msg: msgMismatch},
		{name: "date malformed", spec: base, client: func(r *http.Request) { r.Header.Set("X-Amz-Date", "2026-01-01T00:10:00Z") }, typ: bad,
			msg: "Date must be in ISO-8601 'basic format'. Got '2026-01-01T00:10:00Z'. See http://en.wikipedia.org/wiki/ISO_8601"},
		{name: "date impossible", spec: base, client: func(r *http.Request) { r.Header.Set("X-Amz-Date", "20260132T001000Z") }, typ: bad, msgPart: "ISO-8601"},
		{name: "date missing", spec: base, client: func(r *http.Request) { r.Header.Del("X-Amz-Date") }, typ: bad, msgPart: "'X-Amz-Date' or a 'Date'"},
		{name: "signed too long ago", spec: with(func(s *signSpec) { s.at = testNow.Add(-5*time.Minute - time.Second) }), typ: bad,
			msg: "Signature expired: 20260101T000459Z is now earlier than 20260101T000500Z (20260101T001000Z - 5 min.)"},
		{name: "signed in the future", spec: with(func(s *signSpec) { s.at = testNow.Add(5*time.Minute + time.Second) }), typ: bad,
			msg: "Signature not yet current: 20260101T001501Z is still later than 20260101T001500Z (20260101T001000Z + 5 min.)"},
		{name: "scope region", spec: base, client: func(r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "/us-east-1/", "/us-west-2/", 1))
		}, typ: bad, msg: msgMismatch},
		{name: "scope service", spec: with(func(s *signSpec) { s.service = "bedrock-runtime" }), typ: bad,
			msg: "Credential should be scoped to correct service: 'bedrock'. "},
		{name: "scope date", spec: with(func(s *signSpec) { s.at = time.Date(2025, 12, 31, 23, 58, 0, 0, time.UTC) }), client: func(r *http.Request) {
			r.Header.Set("X-Amz-Date", "20260101T000100Z")
		}, typ: bad, msg: "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '20251231' != '20260101', from '20260101T000100Z'."},
		{name: "scope terminator", spec: base, client: func(r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "/aws4_request", "/aws5_request", 1))
		}, typ: bad, msgPart: "valid terminator"},
		{name: "signature altered", spec: base, client: func(r *http.Request) {
			a := r.Header.Get("Authorization")
			last := a[len(a)-1]
			repl := byte('0')
			if last == '0' {
				repl = '1'
			}
			r.Header.Set("Authorization", a[:len(a)-1]+string(repl))
		}, typ: bad, msg: msgMismatch},
		{name: "wrong secret", spec: with(func(s *signSpec) { s.secret = "not-the-secret" }), typ: bad, msg: msgMismatch},
		{name: "unknown access key", spec: with(func(s *signSpec) { s.akid = "GWUNKNOWN00000000001" }), typ: unrec, msg: msgInvalidToken},
		// Expired keys are refused before the body, so like unknown ones: the
		// answer must not tell a caller without the secret what state a key is in.
		{name: "expired credential", spec: with(func(s *signSpec) { s.akid, s.secret = expiredKey.ID, expiredKey.Secret }), typ: unrec, msg: msgInvalidToken},
		{name: "expired credential wrong secret", spec: with(func(s *signSpec) { s.akid, s.secret = expiredKey.ID, "guess" }), typ: unrec, msg: msgInvalidToken},
		{name: "missing authorization", spec: base, client: func(r *http.Request) { r.Header.Del("Authorization") }, typ: unrec, msg: "Missing Authentication Token"},
		{name: "two authorization headers", spec: base, client: func(r *http.Request) { r.Header.Add("Authorization", "Bearer x") }, typ: bad},
		{name: "malformed authorization", spec: base, client: func(r *http.Request) { r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Signature=abc") }, typ: bad,
			msg: "Authorization header requires 'Credential' parameter. Authorization header requires 'SignedHeaders' parameter."},
		{name: "other scheme", spec: base, client: func(r *http.Request) { r.Header.Set("Authorization", "Basic dXNlcjpwYXNz") }, typ: bad, msgPart: "requires 'Credential'"},
		{name: "sigv4a", spec: base, client: func(r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256", "AWS4-ECDSA-P256-SHA256", 1))
		}, typ: bad, msg: "Unsupported AWS 'algorithm': 'AWS4-ECDSA-P256-SHA256'"},
		{name: "host not signed", spec: base, client: func(r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "SignedHeaders=content-length;content-type;host;", "SignedHeaders=content-length;content-type;", 1))
		}, typ: bad, msgPart: "'Host' or ':authority'"},
		{name: "content-length arrives differently", spec: base, server: func(r *http.Request) {
			r.Header.Set("Content-Length", "1")
		}, typ: bad, msg: msgMismatch},
	}
	v := testVerifier()
	lookup := testLookup(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			req := clientRequest(t, tc.spec)
			if tc.client != nil {
				tc.client(req)
			}
			sr, hash := overTheWire(t, req)
			if tc.server != nil {
				tc.server(sr)
			}
			res, err := v.Authenticate(sr, hash, lookup)
			if err == nil {
				t.Fatalf("Authenticate accepted a %s request: %+v", tc.name, res)
			}
			wantBedrockError(t, err, tc.typ, tc.msg)
			if tc.msgPart != "" && !strings.Contains(err.Error(), tc.msgPart) {
				t.Errorf("error %q does not mention %q", err, tc.msgPart)
			}
			// Only what the signature covers (the body among it) waits for
			// Finish; everything else is refused by Begin, before any body.
			var p Pending
			berr := v.Begin(sr, lookup, &p)
			if afterBody := tc.msg == msgMismatch || tc.msg == msgContentSHA; afterBody != (berr == nil) {
				t.Fatalf("Begin: %v; want it to refuse only what needs no body (Authenticate: %v)", berr, err)
			}
			if berr != nil && berr.Error() != err.Error() {
				t.Errorf("Begin refused with %v, Authenticate with %v", berr, err)
			}
		})
	}
}

func TestAuthenticateBearer(t *testing.T) {
	t.Parallel()
	key, sumHex, err := NewAPIKey()
	if err != nil {
		t.Fatal(err)
	}
	expiredAPIKey, _, err := NewAPIKey()
	if err != nil {
		t.Fatal(err)
	}
	lookup := testLookup(t)
	apiCred := &Credential{ID: "key-1", Account: "333333333333", Label: "notebooks", Kind: KindAPIKey}
	sum, err := hex.DecodeString(sumHex)
	if err != nil {
		t.Fatal(err)
	}
	if err := lookup.AddAPIKey([32]byte(sum), apiCred); err != nil {
		t.Fatal(err)
	}
	if err := lookup.AddAPIKey(HashAPIKey(expiredAPIKey), &Credential{ID: "key-2", Kind: KindAPIKey, ExpiresAt: testNow}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, header string
		want         *Credential
		msg          string
	}{
		{name: "valid", header: "Bearer " + key, want: apiCred},
		{name: "scheme case-insensitive", header: "bearer " + key, want: apiCred},
		{name: "unknown", header: "Bearer bgw-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", msg: msgInvalidToken},
		{name: "prefix of a valid key", header: "Bearer " + key[:len(key)-1], msg: msgInvalidToken},
		{name: "expired at the instant", header: "Bearer " + expiredAPIKey, msg: msgExpiredToken},
		{name: "empty", header: "Bearer ", msg: msgInvalidToken},
		{name: "secret access key as bearer", header: "Bearer " + testSecret, msg: msgInvalidToken},
	}
	v := testVerifier()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r, err := http.NewRequest(http.MethodPost, "https://"+testHost+"/model/m/converse", strings.NewReader("{}"))
			if err != nil {
				t.Fatal(err)
			}
			r.Header.Set("Authorization", tc.header)
			// An API key is its own secret: Begin decides it fully, before any body.
			var p Pending
			if berr := v.Begin(r, lookup, &p); (berr == nil) != (tc.want != nil) || (berr == nil && !p.Bearer()) {
				t.Fatalf("Begin: %v (bearer %v)", berr, p.Bearer())
			}
			res, err := v.Authenticate(r, sha256Hex([]byte("{}")), lookup)
			if tc.want == nil {
				wantBedrockError(t, err, "UnrecognizedClientException", tc.msg)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.Credential != tc.want || res.Signature != "" || res.SigningKey != nil {
				t.Errorf("result = %+v, want only credential %s", res, tc.want.ID)
			}
		})
	}
}

// handSigned builds a SigV4 Authorization header for shapes the Go signer
// never produces: the JS SDK's `:authority` instead of `host` on HTTP/2, and
// a Date header instead of X-Amz-Date. It is an independent, deliberately
// naive implementation written from the SigV4 specification (no code shared
// with the verifier), used only for these cases.
func handSigned(t testing.TB, method, canonicalURI, canonicalQuery string, headers [][2]string, payloadHash, amzDate, region string) string {
	t.Helper()
	var names []string
	var canon strings.Builder
	for _, h := range headers {
		names = append(names, h[0])
		canon.WriteString(h[0] + ":" + h[1] + "\n")
	}
	signed := strings.Join(names, ";")
	cr := strings.Join([]string{method, canonicalURI, canonicalQuery, canon.String(), signed, payloadHash}, "\n")
	scope := amzDate[:8] + "/" + region + "/bedrock/aws4_request"
	sts := "AWS4-HMAC-SHA256\n" + amzDate + "\n" + scope + "\n" + sha256Hex([]byte(cr))
	key := deriveSigningKeyForTest(testSecret, amzDate[:8], region)
	sig := hex.EncodeToString(hmacForTest(key, sts))
	return "AWS4-HMAC-SHA256 Credential=" + testAKID + "/" + scope + ", SignedHeaders=" + signed + ", Signature=" + sig
}

func TestAuthenticateHandSignedShapes(t *testing.T) {
	t.Parallel()
	body := []byte(`{"messages":[]}`)
	hash := sha256Hex(body)
	amzDate := testNow.Format("20060102T150405Z")
	v := testVerifier()
	lookup := testLookup(t)

	t.Run("JS :authority and x-amz-content-sha256", func(t *testing.T) {
		t.Parallel()
		auth := handSigned(t, "POST", "/model/us.amazon.nova-lite-v1%253A0/converse", "",
			[][2]string{{":authority", testHost}, {"content-type", "application/json"}, {"x-amz-content-sha256", hash}, {"x-amz-date", amzDate}},
			hash, amzDate, "us-west-2")
		r, err := http.NewRequest(http.MethodPost, "http://"+testHost+"/model/us.amazon.nova-lite-v1%3A0/converse", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		r.RequestURI = "/model/us.amazon.nova-lite-v1%3A0/converse" // as an HTTP/2 server sets it from :path
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("X-Amz-Content-Sha256", hash)
		r.Header.Set("X-Amz-Date", amzDate)
		r.Header.Set("Authorization", auth)
		if _, err := v.Authenticate(r, hash, lookup); err != nil {
			t.Fatal(err)
		}
		r.Host = "elsewhere.example.com"
		_, err = v.Authenticate(r, hash, lookup)
		wantBedrockError(t, err, "InvalidSignatureException", msgMismatch)
	})
	t.Run("Date header instead of X-Amz-Date", func(t *testing.T) {
		t.Parallel()
		date := testNow.Add(-time.Minute).Format(http.TimeFormat)
		iso := testNow.Add(-time.Minute).Format("20060102T150405Z")
		auth := handSigned(t, "GET", "/foundation-models", "", [][2]string{{"date", date}, {"host", testHost}}, sha256Hex(nil), iso, "us-east-1")
		r, err := http.NewRequest(http.MethodGet, "http://"+testHost+"/foundation-models", nil)
		if err != nil {
			t.Fatal(err)
		}
		r.Header.Set("Date", date)
		r.Header.Set("Authorization", auth)
		res, err := v.Authenticate(r, sha256Hex(nil), lookup)
		if err != nil {
			t.Fatal(err)
		}
		if res.AmzDate != iso {
			t.Errorf("AmzDate = %q, want %q", res.AmzDate, iso)
		}
	})
}

func TestKeyCacheBoundedAndDaily(t *testing.T) {
	t.Parallel()
	c := newKeyCache(4)
	k1 := c.get("A", "s", "20260101", "us-east-1", "bedrock")
	if k2 := c.get("A", "s", "20260101", "us-east-1", "bedrock"); &k1[0] != &k2[0] {
		t.Error("second get derived the key again")
	}
	if k3 := c.get("A", "s2", "20260101", "us-east-1", "bedrock"); bytes.Equal(k1, k3) {
		t.Error("a rotated secret reused the old key")
	}
	for _, r := range []string{"r1", "r2", "r3"} {
		c.get("A", "s", "20260101", r, "bedrock")
	}
	if n := c.len(); n > 4 {
		t.Errorf("cache holds %d keys, bound 4", n)
	}
	c.get("A", "s", "20260102", "us-east-1", "bedrock")
	if n := c.len(); n != 1 {
		t.Errorf("after a new day the cache holds %d keys, want 1", n)
	}
	c.get("A", "s", "20260101", "us-east-1", "bedrock") // a late client: kept beside today's
	if n := c.len(); n != 2 {
		t.Errorf("cache holds %d keys, want 2", n)
	}
	if !bytes.Equal(c.get("A", "s", "20260101", "us-east-1", "bedrock"), k1) {
		t.Error("re-derived key differs")
	}
}

func TestHMACMatchesCryptoHMAC(t *testing.T) {
	t.Parallel()
	for _, n := range []int{0, 1, 63, 64, 65, 1000} {
		msg := bytes.Repeat([]byte{'x'}, n)
		key := []byte("0123456789abcdef0123456789abcdef")
		got, _ := hmacSHA256(nil, key, msg)
		if want := hmacForTest(key, string(msg)); !bytes.Equal(got[:], want) {
			t.Errorf("len %d: hmac mismatch", n)
		}
	}
}

func TestVerifyStatic(t *testing.T) {
	t.Parallel()
	sr, _ := overTheWire(t, clientRequest(t, signSpec{target: "/model/m/invoke", body: `{"a":1}`}))
	if err := VerifyStatic(testVerifier(), sr, []byte(`{"a":1}`), testLookup(t)); err != nil {
		t.Fatal(err)
	}
	err := VerifyStatic(testVerifier(), sr, []byte(`{"a":2}`), testLookup(t))
	wantBedrockError(t, err, "InvalidSignatureException", msgMismatch)
}

func TestAuthenticateAllocations(t *testing.T) {
	// Not parallel: AllocsPerRun measures the whole process.
	v := testVerifier()
	lookup := testLookup(t)
	sr, hash := overTheWire(t, clientRequest(t, signSpec{target: "/model/anthropic.claude-3-haiku-20240307-v1%3A0/invoke", body: `{"max_tokens":10}`,
		header: http.Header{"Content-Type": {"application/json"}, "Accept": {"application/json"}}}))
	if _, err := v.Authenticate(sr, hash, lookup); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(200, func() {
		if _, err := v.Authenticate(sr, hash, lookup); err != nil {
			t.Fatal(err)
		}
	})
	// Measured: 1 (the Result). Budget leaves a little headroom.
	const budget = 2
	if allocs > budget {
		t.Errorf("warm SigV4 Authenticate allocates %.1f times, budget %d", allocs, budget)
	}
}

func BenchmarkAuthenticateSigV4(b *testing.B) {
	v := testVerifier()
	lookup := testLookup(b)
	sr, hash := overTheWire(b, clientRequest(b, signSpec{target: "/model/anthropic.claude-3-haiku-20240307-v1%3A0/invoke", body: `{"max_tokens":10}`,
		header: http.Header{"Content-Type": {"application/json"}, "Accept": {"application/json"}}}))
	if _, err := v.Authenticate(sr, hash, lookup); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := v.Authenticate(sr, hash, lookup); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkAuthenticateBearer(b *testing.B) {
	v := testVerifier()
	key, _, err := NewAPIKey()
	if err != nil {
		b.Fatal(err)
	}
	lookup := testLookup(b)
	if err := lookup.AddAPIKey(HashAPIKey(key), &Credential{ID: "k", Kind: KindAPIKey}); err != nil {
		b.Fatal(err)
	}
	r, err := http.NewRequest(http.MethodPost, "https://"+testHost+"/model/m/converse", nil)
	if err != nil {
		b.Fatal(err)
	}
	r.Header.Set("Authorization", "Bearer "+key)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := v.Authenticate(r, "", lookup); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// FuzzAuthenticate feeds arbitrary Authorization, request target and date
// values to the verifier: it must refuse them with a *bedrock.Error, never
// panic, and never accept a signature it did not compute.
func FuzzAuthenticate(f *testing.F) {
	seed := clientRequest(f, signSpec{target: "/model/m%3A0/invoke?a=1", body: "{}", header: http.Header{"X-Custom": {"a", "b"}}})
	f.Add(seed.Header.Get("Authorization"), "/model/m%3A0/invoke?a=1", seed.Header.Get("X-Amz-Date"))
	f.Add("Bearer bgw-x", "/", "")
	f.Add("AWS4-HMAC-SHA256 Credential=GWTESTKEY00000000001/20260101/r/bedrock/aws4_request, SignedHeaders=host;"+strings.Repeat("x", 80)+", Signature="+sig64, "/?%zz", "20260101T001000Z")
	v := testVerifier()
	lookup := testLookup(f)
	f.Fuzz(func(t *testing.T, auth, target, amzDate string) {
		r := seed.Clone(context.Background())
		r.Header.Set("Authorization", auth)
		r.Header.Set("X-Amz-Date", amzDate)
		r.RequestURI = target
		res, err := v.Authenticate(r, sha256Hex([]byte("{}")), lookup)
		if err != nil {
			var be *bedrock.Error
			if !errors.As(err, &be) {
				t.Fatalf("error %v (%T) is not a *bedrock.Error", err, err)
			}
			return
		}
		if res.Credential == nil {
			t.Fatal("accepted without a credential")
		}
	})
}
