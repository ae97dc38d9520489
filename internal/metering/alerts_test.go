package metering

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/bedrock-gateway/gateway/internal/quota"
	"github.com/bedrock-gateway/gateway/internal/testutil/wait"
)

// receiver is a webhook endpoint that answers with the given statuses in
// turn (the last one repeating) and keeps the bodies it accepted.
type receiver struct {
	t        *testing.T
	secret   string
	statuses []int
	srv      *httptest.Server

	mu       sync.Mutex
	attempts int
	accepted []AlertPayload
	ids      []string
	sigOK    []bool
}

func newReceiver(t *testing.T, secret string, statuses ...int) *receiver {
	r := &receiver{t: t, secret: secret, statuses: statuses}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	status := r.statuses[min(r.attempts, len(r.statuses)-1)]
	r.attempts++
	r.sigOK = append(r.sigOK, VerifySignature(r.secret, body, req.Header.Get(SignatureHeader)))
	if status/100 == 2 {
		var p AlertPayload
		if err := json.Unmarshal(body, &p); err != nil {
			r.t.Errorf("bad body %s: %v", body, err)
		}
		if got := req.Header.Get(TimestampHeader); got != strconv.FormatInt(p.Time.Unix(), 10) {
			r.t.Errorf("timestamp header %q, body time %v", got, p.Time)
		}
		if req.Header.Get("Content-Type") != "application/json" || req.Method != http.MethodPost {
			r.t.Errorf("%s with content type %q", req.Method, req.Header.Get("Content-Type"))
		}
		r.accepted = append(r.accepted, p)
		r.ids = append(r.ids, req.Header.Get(AlertIDHeader))
	}
	w.WriteHeader(status)
}

func (r *receiver) snapshot() (attempts int, accepted []AlertPayload, sigOK []bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.attempts, append([]AlertPayload(nil), r.accepted...), append([]bool(nil), r.sigOK...)
}

var testAlert = quota.Alert{Entitlement: "support-llm", Level: quota.LevelAccount, Target: "222222222222",
	Threshold: 80, Used: 80_123, Limit: 100_000, Month: "2026-10"}

func closeNotifier(t *testing.T, n *Notifier) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.Close(ctx); err != nil {
		t.Fatalf("closing notifier: %v", err)
	}
}

func TestNotifierRetriesThenDelivers(t *testing.T) {
	t.Parallel()
	rcv := newReceiver(t, "s3cret", 500, 503, 200)
	m := NewMetrics(Options{})
	var logs bytes.Buffer
	now := time.Date(2026, 10, 20, 9, 30, 15, 123, time.UTC)
	n := NewNotifier(NotifierOptions{URL: rcv.srv.URL, Secret: "s3cret", Metrics: m, Backoff: time.Millisecond,
		Logger: slog.New(slog.NewJSONHandler(&lockedWriter{w: &logs}, nil)), Now: func() time.Time { return now }})
	n.Alert(testAlert)
	closeNotifier(t, n)

	attempts, accepted, sigOK := rcv.snapshot()
	if attempts != 3 || len(accepted) != 1 {
		t.Fatalf("attempts %d, accepted %d; want 3 and 1", attempts, len(accepted))
	}
	for i, ok := range sigOK {
		if !ok {
			t.Errorf("attempt %d: signature does not verify", i+1)
		}
	}
	want := AlertPayload{ID: alertID(testAlert), Entitlement: "support-llm", Level: "account", Target: "222222222222",
		Threshold: 80, Used: 80_123, Cap: 100_000, Month: "2026-10", Time: now.Truncate(time.Second)}
	if accepted[0] != want {
		t.Errorf("payload %+v\nwant %+v", accepted[0], want)
	}
	if rcv.ids[0] != want.ID || len(want.ID) != 32 {
		t.Errorf("alert ID header %q", rcv.ids[0])
	}
	if got := testutil.ToFloat64(m.budgetAlerts.WithLabelValues("support-llm", "80")); got != 1 {
		t.Errorf("budget alert metric %v", got)
	}
	if !strings.Contains(logs.String(), `"msg":"budget threshold crossed"`) || strings.Contains(logs.String(), "s3cret") {
		t.Errorf("logs:\n%s", logs.String())
	}
}

func TestNotifierDoesNotRetryClientErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		status       int
		wantAttempts int
	}{
		{http.StatusBadRequest, 1},
		{http.StatusUnauthorized, 1},
		{http.StatusNotFound, 1},
		{http.StatusTooManyRequests, 4},
		{http.StatusBadGateway, 4},
	}
	for _, tt := range tests {
		t.Run(strconv.Itoa(tt.status), func(t *testing.T) {
			t.Parallel()
			rcv := newReceiver(t, "k", tt.status)
			n := NewNotifier(NotifierOptions{URL: rcv.srv.URL, Secret: "k", MaxAttempts: 4, Backoff: time.Millisecond})
			n.Alert(testAlert)
			closeNotifier(t, n)
			if attempts, accepted, _ := rcv.snapshot(); attempts != tt.wantAttempts || len(accepted) != 0 {
				t.Errorf("attempts %d accepted %d; want %d and 0", attempts, len(accepted), tt.wantAttempts)
			}
		})
	}
}

func TestNotifierRetriesNetworkErrors(t *testing.T) {
	t.Parallel()
	// A server that is closed refuses connections.
	dead := httptest.NewServer(http.NotFoundHandler())
	url := dead.URL
	dead.Close()
	var attempts atomic.Int32
	client := &http.Client{Transport: roundTripperFunc(func(r *http.Request) (*http.Response, error) {
		attempts.Add(1)
		return http.DefaultTransport.RoundTrip(r)
	})}
	n := NewNotifier(NotifierOptions{URL: url, Client: client, MaxAttempts: 3, Backoff: time.Millisecond})
	n.Alert(testAlert)
	closeNotifier(t, n)
	if attempts.Load() != 3 {
		t.Errorf("attempts %d, want 3", attempts.Load())
	}
}

func TestNotifierCloseDrains(t *testing.T) {
	t.Parallel()
	rcv := newReceiver(t, "k", 200)
	n := NewNotifier(NotifierOptions{URL: rcv.srv.URL, Secret: "k"})
	const alerts = 20
	for i := range alerts {
		a := testAlert
		a.Target = strconv.Itoa(i)
		n.Alert(a)
	}
	closeNotifier(t, n)
	if _, accepted, _ := rcv.snapshot(); len(accepted) != alerts {
		t.Errorf("delivered %d of %d queued alerts before Close returned", len(accepted), alerts)
	}
	// After Close, alerts are still counted and logged but not sent.
	n.Alert(testAlert)
	if _, accepted, _ := rcv.snapshot(); len(accepted) != alerts {
		t.Errorf("an alert after Close was delivered")
	}
	closeNotifier(t, n) // a second Close is harmless
}

func TestNotifierCloseDeadlineAbandonsRetries(t *testing.T) {
	t.Parallel()
	rcv := newReceiver(t, "k", 500)
	// Retries would take hours; Close must give up at its deadline.
	n := NewNotifier(NotifierOptions{URL: rcv.srv.URL, Backoff: time.Hour, MaxBackoff: time.Hour})
	n.Alert(testAlert)
	n.Alert(testAlert)
	// Wait for the first attempt, so the worker is inside its backoff.
	wait.For(t, "a delivery attempt", 10*time.Second, func() bool {
		attempts, _, _ := rcv.snapshot()
		return attempts > 0
	})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := n.Close(ctx); err == nil {
		t.Error("Close returned nil although deliveries were abandoned")
	}
	if attempts, _, _ := rcv.snapshot(); attempts != 1 {
		t.Errorf("attempts %d, want 1", attempts)
	}
}

func TestNotifierWithoutURL(t *testing.T) {
	t.Parallel()
	m := NewMetrics(Options{})
	var logs bytes.Buffer
	n := NewNotifier(NotifierOptions{Metrics: m, Logger: slog.New(slog.NewTextHandler(&lockedWriter{w: &logs}, nil))})
	n.Alert(testAlert)
	a := testAlert
	a.Threshold = 100
	n.Alert(a)
	closeNotifier(t, n)
	if got := testutil.ToFloat64(m.budgetAlerts.WithLabelValues("support-llm", "100")); got != 1 {
		t.Errorf("metric %v", got)
	}
	if c := strings.Count(logs.String(), "budget threshold crossed"); c != 2 {
		t.Errorf("%d log lines:\n%s", c, logs.String())
	}
}

func TestNotifierQueueFullDrops(t *testing.T) {
	t.Parallel()
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-block }))
	defer srv.Close()
	var logs bytes.Buffer
	n := NewNotifier(NotifierOptions{URL: srv.URL, QueueSize: 1, Logger: slog.New(slog.NewTextHandler(&lockedWriter{w: &logs}, nil))})
	for range 10 {
		n.Alert(testAlert) // never blocks, even with the receiver stuck
	}
	close(block)
	closeNotifier(t, n)
	if !strings.Contains(logs.String(), "queue full") {
		t.Errorf("no drop logged:\n%s", logs.String())
	}
}

func TestVerifySignature(t *testing.T) {
	t.Parallel()
	body := []byte(`{"entitlement":"x"}`)
	sig := Sign("secret", body)
	tests := []struct {
		name, secret, header string
		body                 []byte
		want                 bool
	}{
		{"valid", "secret", sig, body, true},
		{"wrong secret", "other", sig, body, false},
		{"tampered body", "secret", sig, []byte(`{"entitlement":"y"}`), false},
		{"no prefix", "secret", strings.TrimPrefix(sig, "sha256="), body, false},
		{"not hex", "secret", "sha256=zz", body, false},
		{"truncated", "secret", sig[:len(sig)-2], body, false},
		{"empty header", "secret", "", body, false},
		{"empty secret", "", Sign("", body), body, false},
	}
	for _, tt := range tests {
		if got := VerifySignature(tt.secret, tt.body, tt.header); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
	// A known vector, so receivers in other languages can check their code:
	// HMAC-SHA256("key", "The quick brown fox jumps over the lazy dog").
	if got := Sign("key", []byte("The quick brown fox jumps over the lazy dog")); got != "sha256=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8" {
		t.Errorf("known vector: %s", got)
	}
}

func TestBackoffBounds(t *testing.T) {
	t.Parallel()
	n := &Notifier{opts: NotifierOptions{Backoff: 100 * time.Millisecond, MaxBackoff: time.Second}}
	for attempt := 1; attempt <= 10; attempt++ {
		full := min(100*time.Millisecond<<(attempt-1), time.Second)
		for range 50 {
			d := n.backoff(attempt)
			if d < full/2 || d > full {
				t.Fatalf("attempt %d: %v outside [%v, %v]", attempt, d, full/2, full)
			}
		}
	}
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// lockedWriter serializes writes from the notifier's worker and the test.
type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
