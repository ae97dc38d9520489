package proxy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/bedrock-gateway/gateway/internal/authn"
	"github.com/bedrock-gateway/gateway/internal/authz"
	"github.com/bedrock-gateway/gateway/internal/bedrock"
	"github.com/bedrock-gateway/gateway/internal/metering"
)

// cannedUpstream answers every call like a fast Bedrock would, without a network.
type cannedUpstream struct{ stream []byte }

var converseAnswer = []byte(`{"output":{"message":{"role":"assistant","content":[{"text":"hello there"}]}},"stopReason":"end_turn","usage":{"inputTokens":3,"outputTokens":2,"totalTokens":5},"metrics":{"latencyMs":1}}`)

func (u *cannedUpstream) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		_, _ = io.Copy(io.Discard, r.Body)
		_ = r.Body.Close()
	}
	h := http.Header{}
	h.Set("X-Amzn-Requestid", "up-1")
	body := converseAnswer
	if bytes.HasSuffix([]byte(r.URL.Path), []byte("/converse-stream")) {
		h.Set("Content-Type", "application/vnd.amazon.eventstream")
		body = u.stream
	} else {
		h.Set("Content-Type", "application/json")
	}
	return &http.Response{StatusCode: 200, Header: h, Body: io.NopCloser(bytes.NewReader(body)), ContentLength: int64(len(body)), Request: r}, nil
}

func converseStreamBody() []byte {
	var b bytes.Buffer
	b.Write(bedrock.EncodeEventFrame("messageStart", []byte(`{"role":"assistant"}`)))
	for i := 0; i < 20; i++ {
		b.Write(bedrock.EncodeEventFrame("contentBlockDelta", []byte(`{"contentBlockIndex":0,"delta":{"text":"word "}}`)))
	}
	b.Write(bedrock.EncodeEventFrame("contentBlockStop", []byte(`{"contentBlockIndex":0}`)))
	b.Write(bedrock.EncodeEventFrame("messageStop", []byte(`{"stopReason":"end_turn"}`)))
	b.Write(bedrock.EncodeEventFrame("metadata", []byte(`{"usage":{"inputTokens":3,"outputTokens":20,"totalTokens":23},"metrics":{"latencyMs":5}}`)))
	return b.Bytes()
}

func benchHandler(tb testing.TB, q Quota) *Handler {
	tb.Helper()
	st := testState()
	snap, err := authz.Build(st, 1)
	if err != nil {
		tb.Fatal(err)
	}
	u, _ := url.Parse("https://bedrock-runtime.us-east-1.amazonaws.com")
	h, err := New(Options{
		Upstream: u, Region: "us-east-1", Transport: &cannedUpstream{stream: converseStreamBody()},
		Credentials: aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider(hubAKID, hubSecret, "")),
		Snapshots:   staticSnapshots{snap}, Verifier: authn.NewVerifier(authn.Options{}),
		Quota: q, Metrics: metering.NewMetrics(metering.Options{}),
	})
	if err != nil {
		tb.Fatal(err)
	}
	return h
}

var converseRequestBody = []byte(`{"messages":[{"role":"user","content":[{"text":"hello there gateway"}]}],"inferenceConfig":{"maxTokens":16}}`)

// signedRequest builds a request as the Go SDK signs it; the signature stays
// valid for the benchmark's duration (5-minute window).
func signedRequest(tb testing.TB, path string) func() *http.Request {
	tb.Helper()
	req := httptest.NewRequest("POST", path, bytes.NewReader(converseRequestBody))
	req.Header.Set("Content-Type", "application/json")
	req.Host = "gateway.example"
	sum := sha256.Sum256(converseRequestBody)
	if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: devAKID, SecretAccessKey: devSecret}, req,
		hex.EncodeToString(sum[:]), "bedrock", "us-east-1", time.Now()); err != nil {
		tb.Fatal(err)
	}
	hdr := req.Header.Clone()
	return func() *http.Request {
		r := httptest.NewRequest("POST", path, bytes.NewReader(converseRequestBody))
		r.Host = "gateway.example"
		r.Header = hdr.Clone()
		r.ContentLength = int64(len(converseRequestBody))
		return r
	}
}

type nopQuota struct{}

type nopTicket struct{}

func (nopQuota) Reserve(context.Context, QuotaRequest) (Ticket, error) { return nopTicket{}, nil }
func (nopTicket) Remaining() int64                                     { return -1 }
func (nopTicket) Settle(context.Context, int64, bedrock.Usage)         {}
func (nopTicket) Release(context.Context)                              {}

// discardWriter is a ResponseWriter that keeps nothing, so the benchmark
// measures the gateway, not a recorder.
type discardWriter struct {
	h      http.Header
	status int
	n      int
}

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(p []byte) (int, error) { d.n += len(p); return len(p), nil }
func (d *discardWriter) WriteHeader(code int)        { d.status = code }
func (d *discardWriter) Flush()                      {}

func benchmarkPath(b *testing.B, path string) {
	h := benchHandler(b, nopQuota{})
	mk := signedRequest(b, path)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		w := &discardWriter{h: http.Header{}}
		for pb.Next() {
			clear(w.h)
			h.ServeHTTP(w, mk())
		}
	})
}

// BenchmarkHandlerConverse is the whole request path (SigV4 verification,
// authorization, estimate, quota interface, re-signing, usage extraction,
// metrics, access log) against an in-process upstream.
func BenchmarkHandlerConverse(b *testing.B) { benchmarkPath(b, "/model/support-llm/converse") }

// BenchmarkHandlerConverseStream adds event-stream forwarding and scanning (24 frames).
func BenchmarkHandlerConverseStream(b *testing.B) {
	benchmarkPath(b, "/model/support-llm/converse-stream")
}

// BenchmarkBareReverseProxy is the reference: httputil.ReverseProxy with the
// same in-process upstream and the same requests, doing no work of its own.
func BenchmarkBareReverseProxy(b *testing.B) {
	u, _ := url.Parse("https://bedrock-runtime.us-east-1.amazonaws.com")
	rp := &httputil.ReverseProxy{
		Rewrite:       func(pr *httputil.ProxyRequest) { pr.SetURL(u) },
		Transport:     &cannedUpstream{stream: converseStreamBody()},
		FlushInterval: -1,
	}
	mk := signedRequest(b, "/model/support-llm/converse")
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		w := &discardWriter{h: http.Header{}}
		for pb.Next() {
			clear(w.h)
			rp.ServeHTTP(w, mk())
		}
	})
}

// TestHandlerAllocationBudget keeps the hot path's allocations from creeping up
// (counts are stable across machines; times are not, so none are asserted).
func TestHandlerAllocationBudget(t *testing.T) {
	h := benchHandler(t, nopQuota{})
	for path, budget := range map[string]float64{
		"/model/support-llm/converse":        allocBudgetConverse,
		"/model/support-llm/converse-stream": allocBudgetStream,
	} {
		mk := signedRequest(t, path)
		w := &discardWriter{h: http.Header{}}
		h.ServeHTTP(w, mk()) // warm caches (signing keys, metric children)
		if w.status != 200 || w.n == 0 {
			t.Fatalf("%s: status %d, %d bytes: %v", path, w.status, w.n, w.h)
		}
		got := testing.AllocsPerRun(50, func() {
			clear(w.h)
			h.ServeHTTP(w, mk())
		})
		// The request itself (built by the test) is part of the count.
		if got > budget {
			t.Errorf("%s: %.0f allocations per request, budget %.0f", path, got, budget)
		}
		t.Logf("%s: %s allocations per request (budget %.0f)", path, strconv.FormatFloat(got, 'f', 0, 64), budget)
	}
}
