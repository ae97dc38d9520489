package metering

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bedrock-gateway/gateway/internal/quota"
)

// Webhook headers.
const (
	// SignatureHeader carries "sha256=" and the hex HMAC-SHA256 of the body
	// keyed with the shared secret.
	SignatureHeader = "X-Gateway-Signature"
	// TimestampHeader carries the alert's time in Unix seconds; it equals the
	// body's "time", so it is covered by the signature.
	TimestampHeader = "X-Gateway-Timestamp"
	// AlertIDHeader carries the alert's ID, the same on every retry (and on
	// every replica), for receivers to drop duplicates.
	AlertIDHeader = "X-Gateway-Alert-Id"
)

// NotifierOptions configure a Notifier.
type NotifierOptions struct {
	// URL receives a POST per alert; empty means no webhook (the metric and
	// the log line still happen).
	URL string
	// Secret keys the HMAC signature; empty sends no signature header.
	Secret string
	// Client sends the webhooks; nil means a client with a 10 s timeout.
	Client *http.Client
	// Logger; nil discards.
	Logger *slog.Logger
	// Metrics counts alerts (gateway_budget_alerts_total); may be nil.
	Metrics *Metrics
	// MaxAttempts bounds deliveries of one alert; zero means 6.
	MaxAttempts int
	// Backoff is the wait after the first failed attempt, doubled after each
	// further one, with jitter (a random wait between half and all of it);
	// zero means 500 ms. MaxBackoff caps it; zero means 30 s.
	Backoff, MaxBackoff time.Duration
	// QueueSize bounds alerts waiting for delivery; zero means 1024. When it
	// is full an alert's webhook is dropped (and logged).
	QueueSize int
	// Now stamps alerts; nil means time.Now.
	Now func() time.Time
}

// AlertPayload is the JSON body of a budget alert webhook.
type AlertPayload struct {
	// ID is stable for one cap, threshold and month: receivers can use it to
	// drop a duplicate delivery (a retry after a lost response).
	ID          string `json:"id"`
	Entitlement string `json:"entitlement"`
	// Level is entitlement, share or account; Target the entitlement name,
	// the share's target or the account ID.
	Level     string `json:"level"`
	Target    string `json:"target"`
	Threshold int    `json:"threshold"` // percent of Cap
	Used      int64  `json:"used"`      // tokens used when the threshold was crossed
	Cap       int64  `json:"cap"`       // the cap's monthly limit in tokens
	Month     string `json:"month"`
	// Time is when this replica observed the crossing (RFC 3339, UTC).
	Time time.Time `json:"time"`
}

// Notifier reports budget alerts: a metric and a log line for each, and a
// signed webhook POST delivered by a background worker with retries. Its
// Alert method fits quota.Options.OnAlert. Close it to drain the queue.
type Notifier struct {
	opts  NotifierOptions
	log   *slog.Logger
	queue chan AlertPayload

	mu     sync.Mutex // guards closed and sends on queue
	closed bool

	stop    context.CancelFunc // aborts deliveries when Close's context ends
	stopCtx context.Context
	done    chan struct{}
}

// NewNotifier starts a Notifier (and its worker when URL is set).
func NewNotifier(opts NotifierOptions) *Notifier {
	if opts.Client == nil {
		opts.Client = &http.Client{Timeout: 10 * time.Second}
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = 6
	}
	if opts.Backoff <= 0 {
		opts.Backoff = 500 * time.Millisecond
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = 30 * time.Second
	}
	if opts.QueueSize <= 0 {
		opts.QueueSize = 1024
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	n := &Notifier{opts: opts, log: log, done: make(chan struct{})}
	n.stopCtx, n.stop = context.WithCancel(context.Background())
	if opts.URL == "" {
		close(n.done)
		return n
	}
	n.queue = make(chan AlertPayload, opts.QueueSize)
	go n.run()
	return n
}

// Alert records a crossed threshold and queues its webhook. It never blocks.
func (n *Notifier) Alert(a quota.Alert) {
	p := AlertPayload{
		ID:          alertID(a),
		Entitlement: a.Entitlement, Level: string(a.Level), Target: a.Target,
		Threshold: a.Threshold, Used: a.Used, Cap: a.Limit, Month: a.Month,
		Time: n.opts.Now().UTC().Truncate(time.Second),
	}
	if n.opts.Metrics != nil {
		n.opts.Metrics.BudgetAlert(a.Entitlement, a.Threshold)
	}
	n.log.Warn("budget threshold crossed", "alert_id", p.ID, "entitlement", p.Entitlement, "level", p.Level,
		"target", p.Target, "threshold_percent", p.Threshold, "used", p.Used, "cap", p.Cap, "month", p.Month)
	if n.queue == nil {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		n.log.Error("budget alert webhook not sent: notifier closed", "alert_id", p.ID)
		return
	}
	select {
	case n.queue <- p:
	default:
		n.log.Error("budget alert webhook dropped: queue full", "alert_id", p.ID, "queue_size", n.opts.QueueSize)
	}
}

// Close stops accepting alerts and waits until the queued webhooks are
// delivered (or given up). When ctx ends first, the delivery in progress
// and its retries are abandoned, the rest are logged as not sent, and
// ctx's error is returned.
func (n *Notifier) Close(ctx context.Context) error {
	n.mu.Lock()
	if !n.closed {
		n.closed = true
		if n.queue != nil {
			close(n.queue)
		}
	}
	n.mu.Unlock()
	select {
	case <-n.done:
		n.stop()
		return nil
	case <-ctx.Done():
		n.stop()
		<-n.done
		return ctx.Err()
	}
}

func (n *Notifier) run() {
	defer close(n.done)
	for p := range n.queue {
		if n.stopCtx.Err() != nil {
			n.log.Error("budget alert webhook not sent: shutting down", "alert_id", p.ID)
			continue
		}
		n.deliver(p)
	}
}

// deliver POSTs p until it is accepted, refused for good, or attempts run out.
func (n *Notifier) deliver(p AlertPayload) {
	body, err := json.Marshal(p)
	if err != nil { // cannot happen for this type
		n.log.Error("encoding budget alert", "alert_id", p.ID, "err", err)
		return
	}
	var lastErr error
	for attempt := 1; attempt <= n.opts.MaxAttempts; attempt++ {
		retryAfter, retry, err := n.post(p, body)
		if err == nil {
			n.log.Info("budget alert webhook delivered", "alert_id", p.ID, "attempt", attempt)
			return
		}
		lastErr = err
		if !retry || attempt == n.opts.MaxAttempts {
			break
		}
		wait := max(n.backoff(attempt), retryAfter)
		wait = min(wait, n.opts.MaxBackoff)
		n.log.Warn("budget alert webhook failed; retrying", "alert_id", p.ID, "attempt", attempt, "retry_in", wait, "err", err)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-n.stopCtx.Done():
			t.Stop()
			n.log.Error("budget alert webhook not sent: shutting down", "alert_id", p.ID, "err", err)
			return
		}
	}
	n.log.Error("budget alert webhook not delivered", "alert_id", p.ID, "err", lastErr)
}

// post sends one attempt. It reports whether a failure is worth retrying and
// how long the receiver asked to wait.
func (n *Notifier) post(p AlertPayload, body []byte) (retryAfter time.Duration, retry bool, err error) {
	req, err := http.NewRequestWithContext(n.stopCtx, http.MethodPost, n.opts.URL, bytes.NewReader(body))
	if err != nil {
		return 0, false, fmt.Errorf("building webhook request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "bedrock-gateway-budget-alerts")
	req.Header.Set(TimestampHeader, strconv.FormatInt(p.Time.Unix(), 10))
	req.Header.Set(AlertIDHeader, p.ID)
	if n.opts.Secret != "" {
		req.Header.Set(SignatureHeader, Sign(n.opts.Secret, body))
	}
	resp, err := n.opts.Client.Do(req)
	if err != nil {
		return 0, true, fmt.Errorf("posting webhook: %w", err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return 0, false, nil
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return parseRetryAfter(resp.Header.Get("Retry-After")), true, fmt.Errorf("webhook answered %s", resp.Status)
	default:
		return 0, false, fmt.Errorf("webhook answered %s", resp.Status)
	}
}

// backoff is the wait after the given failed attempt: Backoff doubled per
// attempt, capped, then a random point in its upper half, so replicas and
// alerts that failed together do not retry together.
func (n *Notifier) backoff(attempt int) time.Duration {
	d := n.opts.Backoff
	for i := 1; i < attempt && d < n.opts.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, n.opts.MaxBackoff)
	return d/2 + rand.N(d/2+1)
}

func parseRetryAfter(v string) time.Duration {
	if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && s > 0 {
		return time.Duration(s) * time.Second
	}
	return 0
}

func alertID(a quota.Alert) string {
	sum := sha256.Sum256([]byte(strings.Join([]string{a.Month, a.Entitlement, string(a.Level), a.Target, strconv.Itoa(a.Threshold)}, "\x00")))
	return hex.EncodeToString(sum[:16])
}

// Sign returns the SignatureHeader value for body: "sha256=" followed by
// the hex HMAC-SHA256 of body keyed with secret.
func Sign(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// VerifySignature reports whether header (the X-Gateway-Signature value)
// is the signature of body with secret. A receiver verifies a webhook by
// reading the raw request body, before decoding it, and calling
//
//	ok := metering.VerifySignature(secret, body, r.Header.Get("X-Gateway-Signature"))
//
// or, without this package, computing hex(HMAC-SHA256(secret, body)) and
// comparing it in constant time with what follows "sha256=". To refuse
// replays, also check that the body's "time" (equal to X-Gateway-Timestamp)
// is recent, and drop repeated "id"s: retries resend the same id.
func VerifySignature(secret string, body []byte, header string) bool {
	got, ok := strings.CutPrefix(header, "sha256=")
	if !ok || secret == "" {
		return false
	}
	sig, err := hex.DecodeString(got)
	if err != nil {
		return false
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return hmac.Equal(sig, mac.Sum(nil))
}
