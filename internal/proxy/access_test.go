package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	brtypes "github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/bedrock-gateway/gateway/internal/authn"
	"github.com/bedrock-gateway/gateway/internal/authz"
	"github.com/bedrock-gateway/gateway/internal/bedrock"
	"github.com/bedrock-gateway/gateway/internal/metering"
)

// TestAccessRecord: the record is built once from the request's state, and
// the access log reports exactly its figures.
func TestAccessRecord(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	acct := &authz.Account{ID: "222222222222", Team: "support"}
	tests := []struct {
		name  string
		setup func(w *responseWriter, c *call)
		want  accessRecord
	}{
		{
			name: "answered",
			setup: func(w *responseWriter, c *call) {
				w.WriteHeader(http.StatusOK)
				w.firstByte = start.Add(300 * time.Millisecond)
				c.account, c.cred = acct, &authn.Credential{Label: "dev"}
				c.usage, c.hasUsage, c.quotaNote, c.tier = bedrock.Usage{InputTokens: 3, OutputTokens: 7}, true, "settled", "priority"
				c.upstream = 900 * time.Millisecond
			},
			want: accessRecord{Status: 200, Code: 200, Account: "222222222222", Team: "support", Credential: "dev",
				Usage: bedrock.Usage{InputTokens: 3, OutputTokens: 7}, HasUsage: true, Quota: "settled", Tier: "priority",
				TTFB: 300 * time.Millisecond, Overhead: 100 * time.Millisecond},
		},
		{
			name: "IAM caller",
			setup: func(w *responseWriter, c *call) {
				w.WriteHeader(http.StatusOK)
				role := "arn:aws:sts::222222222222:assumed-role/support/app"
				c.account, c.cred = acct, &authn.Credential{Kind: authn.KindIAM, Label: role}
			},
			want: accessRecord{Status: 200, Code: 200, Account: "222222222222", Team: "support",
				Credential: "arn:aws:sts::222222222222:assumed-role/support/app",
				Principal:  "arn:aws:sts::222222222222:assumed-role/support/app", Overhead: time.Second},
		},
		{
			name: "client gone",
			setup: func(w *responseWriter, c *call) {
				w.WriteHeader(http.StatusOK)
				w.clientGone = true
				c.upstream = 2 * time.Second // waited past the end the clock saw
			},
			want: accessRecord{Status: 200, Code: 499},
		},
		{
			name: "refused",
			setup: func(w *responseWriter, c *call) {
				w.WriteHeader(http.StatusServiceUnavailable)
				c.errType = "ServiceUnavailableException"
			},
			want: accessRecord{Status: 503, Code: 503, ErrType: "ServiceUnavailableException", Overhead: time.Second},
		},
		{
			name:  "nothing written",
			setup: func(*responseWriter, *call) {},
			want:  accessRecord{Status: 200, Code: 200, Overhead: time.Second},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var logged bytes.Buffer
			h := accessHandler(t, start.Add(time.Second), slog.New(slog.NewJSONHandler(&logged, nil)))
			w := newResponseWriter(httptest.NewRecorder())
			r := httptest.NewRequest(http.MethodPost, "/model/support-llm/converse", nil)
			c := &call{start: start, requestID: "req-1", route: bedrock.Route{Op: bedrock.OpConverse}}
			tt.setup(w, c)
			want := tt.want
			want.RequestID, want.Client, want.Op, want.Latency = "req-1", r.RemoteAddr, bedrock.OpConverse, time.Second

			rec := h.accessRecord(w, r, c)
			if rec != want {
				t.Fatalf("record\n got %+v\nwant %+v", rec, want)
			}
			_, span := noop.NewTracerProvider().Tracer("").Start(t.Context(), "x")
			h.emitAccess(t.Context(), span, rec)
			var line struct {
				Status       int    `json:"status"`
				Error        string `json:"error"`
				Quota        string `json:"quota"`
				OutputTokens int64  `json:"output_tokens"`
				Latency      int64  `json:"latency"`
				Overhead     int64  `json:"overhead"`
			}
			if err := json.Unmarshal(logged.Bytes(), &line); err != nil {
				t.Fatalf("access log %q: %v", logged.String(), err)
			}
			if line.Status != rec.Code || line.Error != rec.ErrType || line.Quota != rec.Quota || line.OutputTokens != rec.Usage.OutputTokens ||
				line.Latency != int64(rec.Latency) || line.Overhead != int64(rec.Overhead) {
				t.Fatalf("access log %s disagrees with the record %+v", logged.String(), rec)
			}
			if got := requestCodes(t, h.opts.Metrics); len(got) != 1 || got[0] != strconv.Itoa(rec.Code) {
				t.Fatalf("metrics counted codes %v, the record says %d", got, rec.Code)
			}
		})
	}
}

// requestCodes lists the code label of every gateway_requests_total series.
func requestCodes(t *testing.T, m *metering.Metrics) []string {
	t.Helper()
	families, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var codes []string
	for _, f := range families {
		if f.GetName() != "gateway_requests_total" {
			continue
		}
		for _, s := range f.GetMetric() {
			for _, l := range s.GetLabel() {
				if l.GetName() == "code" {
					codes = append(codes, l.GetValue())
				}
			}
		}
	}
	return codes
}

// upstreamFailures reads gateway_upstream_failures_total{reason}.
func upstreamFailures(t *testing.T, m *metering.Metrics, reason string) float64 {
	t.Helper()
	families, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "gateway_upstream_failures_total" {
			continue
		}
		for _, s := range f.GetMetric() {
			for _, l := range s.GetLabel() {
				if l.GetName() == "reason" && l.GetValue() == reason {
					return s.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

func accessHandler(t *testing.T, now time.Time, log *slog.Logger) *Handler {
	t.Helper()
	u, _ := url.Parse("https://bedrock-runtime.us-east-1.amazonaws.com")
	h, err := New(Options{
		Upstream: u, Region: "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider(hubAKID, hubSecret, ""),
		Snapshots:   staticSnapshots{}, Verifier: authn.NewVerifier(authn.Options{}),
		Metrics: metering.NewMetrics(metering.Options{}), Logger: log,
		Now: func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// A denied call is logged with the model ID the caller named and why it was
// denied; the caller gets the same AccessDeniedException whatever the reason.
func TestDenialLoggedWithReason(t *testing.T) {
	t.Parallel()
	var logs syncBuf
	h := newHarness(t, harnessOptions{proxy: func(o *Options) {
		o.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
	}})
	c := h.client(t, devAKID, devSecret)
	var messages []string
	for _, model := range []string{"marketing-only", "no-such-entitlement"} {
		_, err := c.Converse(context.Background(), &bedrockruntime.ConverseInput{ModelId: aws.String(model), Messages: userMessage("hi")})
		var denied *brtypes.AccessDeniedException
		if !errors.As(err, &denied) {
			t.Fatalf("%s: %v, want AccessDeniedException", model, err)
		}
		messages = append(messages, denied.ErrorMessage())
	}
	if messages[0] != messages[1] {
		t.Errorf("denials differ for the caller: %q vs %q", messages[0], messages[1])
	}
	for model, reason := range map[string]string{"marketing-only": "not_shared", "no-such-entitlement": "unknown_entitlement"} {
		found := false
		for _, line := range strings.Split(logs.String(), "\n") {
			var rec map[string]any
			if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == "request" && rec["requested_model"] == model {
				found = rec["deny_reason"] == reason && rec["error"] == "AccessDeniedException"
			}
		}
		if !found {
			t.Errorf("no access log line for %s with deny_reason %s:\n%s", model, reason, logs.String())
		}
	}
}

// syncBuf is a log buffer written from the handler's goroutines.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }

func (s *syncBuf) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }
