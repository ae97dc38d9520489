package proxy

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/bedrock-gateway/gateway/internal/authn"
	"github.com/bedrock-gateway/gateway/internal/authz"
	"github.com/bedrock-gateway/gateway/internal/metering"
)

// traceUpstream records the traceparent each upstream request carries.
type traceUpstream struct {
	cannedUpstream
	mu   sync.Mutex
	seen []string
}

func (u *traceUpstream) RoundTrip(r *http.Request) (*http.Response, error) {
	u.mu.Lock()
	u.seen = append(u.seen, r.Header.Get("Traceparent"))
	u.mu.Unlock()
	return u.cannedUpstream.RoundTrip(r)
}

// TestTracing: with a tracer, every stage has its span under the server
// span; without one (no spans started at all), the caller's trace context
// still travels upstream unchanged.
func TestTracing(t *testing.T) {
	t.Parallel()
	const parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	for _, tc := range []struct {
		name   string
		tracer func() (trace.Tracer, *tracetest.SpanRecorder)
	}{
		{"no-op tracer", func() (trace.Tracer, *tracetest.SpanRecorder) { return nil, nil }},
		{"recording tracer", func() (trace.Tracer, *tracetest.SpanRecorder) {
			rec := tracetest.NewSpanRecorder()
			return sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)).Tracer("test"), rec
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tracer, rec := tc.tracer()
			snap, err := authz.Build(testState(), 1)
			if err != nil {
				t.Fatal(err)
			}
			up := &traceUpstream{}
			u, _ := url.Parse("https://bedrock-runtime.us-east-1.amazonaws.com")
			h, err := New(Options{
				Upstream: u, Region: "us-east-1", Transport: up, Tracer: tracer,
				Credentials: aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider(hubAKID, hubSecret, "")),
				Snapshots:   staticSnapshots{snap}, Verifier: authn.NewVerifier(authn.Options{}),
				Quota: nopQuota{}, Metrics: metering.NewMetrics(metering.Options{}),
			})
			if err != nil {
				t.Fatal(err)
			}
			r := signedRequest(t, "/model/support-llm/converse")()
			r.Header.Set("Traceparent", parent)
			w := &discardWriter{h: http.Header{}}
			h.ServeHTTP(w, r)
			if w.status != http.StatusOK {
				t.Fatalf("status %d", w.status)
			}
			if len(up.seen) != 1 || !strings.HasPrefix(up.seen[0], "00-0af7651916cd43dd8448eb211c80319c-") {
				t.Fatalf("upstream traceparent %q, want trace 0af7651916cd43dd8448eb211c80319c", up.seen)
			}
			if rec == nil {
				if up.seen[0] != parent {
					t.Errorf("upstream traceparent %q, want the caller's %q", up.seen[0], parent)
				}
				return
			}
			var names []string
			for _, s := range rec.Ended() {
				names = append(names, s.Name())
				if s.SpanContext().TraceID().String() != "0af7651916cd43dd8448eb211c80319c" {
					t.Errorf("span %s in trace %s", s.Name(), s.SpanContext().TraceID())
				}
			}
			for _, want := range []string{"bedrock-gateway", "authenticate", "authorize", "quota.reserve", "upstream", "quota.settle"} {
				if !slices.Contains(names, want) {
					t.Errorf("no %s span; spans: %v", want, names)
				}
			}
		})
	}
}
