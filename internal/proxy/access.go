package proxy

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/bedrock-gateway/gateway/internal/authn"
	"github.com/bedrock-gateway/gateway/internal/bedrock"
	"github.com/bedrock-gateway/gateway/internal/metering"
)

// accessRecord is what one request did, built once when it is answered and
// then handed to each emitter (metrics, trace span, access log), so that
// they cannot disagree, in the manner of tailscale's tsweb.AccessLogRecord.
type accessRecord struct {
	RequestID  string
	Client     string // the caller's address (X-Forwarded-For's first when trusted)
	Op         bedrock.Operation
	Account    string
	Team       string
	Credential string // the credential's label
	// Principal is the caller's IAM principal ARN when it authenticated with
	// an IAM identity token, else empty. Not a metrics label (cardinality).
	Principal   string
	Entitlement string
	Model       string // the upstream model
	// Profile is the application inference profile ARN called instead of
	// Model (billing.profiles); empty when the model was called.
	Profile string
	// RequestedModel is the model ID as the caller named it (an entitlement
	// name, a model ID or ARN); DenyReason why a call was denied. Both are
	// for the gateway's log: the caller gets one AccessDeniedException.
	RequestedModel string
	DenyReason     string
	Tier           string
	// Status is the HTTP status written; Code is the status reported: 499
	// when the client closed the request (nginx's convention).
	Status  int
	Code    int
	ErrType string
	Usage   bedrock.Usage
	// HasUsage: Usage is known (exactly or, Usage.Estimated, as charged).
	HasUsage bool
	Quota    string // what admission did: reserved, settled, released, rejected:<reason>...
	// UpstreamStatus is Bedrock's answer's status, 0 when none came.
	UpstreamStatus int
	Latency        time.Duration
	TTFB           time.Duration // zero when no byte was written
	Overhead       time.Duration // Latency less the time spent waiting on the upstream
}

// accessRecord builds the record of the request c, answered through w.
func (h *Handler) accessRecord(w *responseWriter, r *http.Request, c *call) accessRecord {
	rec := accessRecord{
		RequestID: c.requestID, Client: h.clientAddr(r), Op: c.route.Op,
		Entitlement: c.entitlementName(), Tier: c.tier, Status: w.status, ErrType: c.errType,
		RequestedModel: c.route.ModelID, DenyReason: c.denyReason,
		Usage: c.usage, HasUsage: c.hasUsage, Quota: c.quotaNote, UpstreamStatus: c.upstreamStatus,
		Latency: h.opts.Now().Sub(c.start),
	}
	if rec.Status == 0 {
		rec.Status = http.StatusOK
	}
	rec.Code = rec.Status
	if w.clientGone {
		rec.Code = 499
	}
	if !w.firstByte.IsZero() {
		rec.TTFB = w.firstByte.Sub(c.start)
	}
	rec.Overhead = max(rec.Latency-c.upstream, 0)
	if c.account != nil {
		rec.Team, rec.Account = c.account.Team, c.account.ID
	}
	if c.decision != nil {
		rec.Model = c.decision.UpstreamModel
	}
	rec.Profile = c.profile
	if c.cred != nil {
		rec.Credential = c.cred.Label
		if c.cred.Kind == authn.KindIAM {
			rec.Principal = c.cred.Label
		}
	}
	return rec
}

// emitAccess hands the record to the metrics, the span (which it ends) and
// the access log.
func (h *Handler) emitAccess(ctx context.Context, span trace.Span, rec accessRecord) {
	h.opts.Metrics.Observe(metering.Request{
		Entitlement: rec.Entitlement, Team: rec.Team, Account: rec.Account, Model: rec.Model,
		Op: rec.Op, Code: rec.Code, Duration: rec.Latency, TTFB: rec.TTFB, Overhead: rec.Overhead,
		Usage: rec.Usage, HasUsage: rec.HasUsage, Tier: rec.Tier,
		Rejection: rejectionReason(rec.Quota), UpstreamStatus: rec.UpstreamStatus,
	})
	if span.IsRecording() {
		annotateSpan(span, &rec)
	}
	span.End()
	h.logAccess(ctx, &rec)
}

// rejectionReason is the reason of a "rejected:<reason>" quota note, else "".
func rejectionReason(quota string) string {
	if reason, ok := strings.CutPrefix(quota, "rejected:"); ok {
		return reason
	}
	return ""
}

// annotateSpan records the request on its server span (OpenTelemetry's
// gen_ai semantic conventions where they apply).
func annotateSpan(span trace.Span, rec *accessRecord) {
	span.SetAttributes(
		attribute.String("gen_ai.system", "aws.bedrock"),
		attribute.String("gen_ai.operation.name", rec.Op.String()),
		attribute.String("gen_ai.request.model", rec.Model),
		attribute.String("gateway.entitlement", rec.Entitlement),
		attribute.String("gateway.account", rec.Account),
		attribute.String("gateway.team", rec.Team),
		attribute.String("gateway.principal", rec.Principal),
		attribute.String("gateway.profile", rec.Profile),
		attribute.String("aws.request_id", rec.RequestID),
		attribute.Int("http.response.status_code", rec.Status),
	)
	if rec.HasUsage {
		span.SetAttributes(
			attribute.Int64("gen_ai.usage.input_tokens", rec.Usage.InputTokens),
			attribute.Int64("gen_ai.usage.output_tokens", rec.Usage.OutputTokens),
		)
	}
}

// logAccess writes the access log line: at Info, or Warn for a 5xx.
func (h *Handler) logAccess(ctx context.Context, rec *accessRecord) {
	lvl := slog.LevelInfo
	if rec.Status >= 500 {
		lvl = slog.LevelWarn
	}
	if !h.opts.Logger.Enabled(ctx, lvl) {
		return
	}
	h.opts.Logger.LogAttrs(ctx, lvl, "request",
		slog.String("request_id", rec.RequestID),
		slog.String("client", rec.Client),
		slog.String("operation", rec.Op.String()),
		slog.String("account", rec.Account),
		slog.String("team", rec.Team),
		slog.String("credential", rec.Credential),
		slog.String("principal", rec.Principal),
		slog.String("entitlement", rec.Entitlement),
		slog.String("model", rec.Model),
		slog.String("profile", rec.Profile),
		slog.String("requested_model", rec.RequestedModel),
		slog.String("deny_reason", rec.DenyReason),
		slog.String("tier", rec.Tier),
		slog.Int("status", rec.Code),
		slog.String("error", rec.ErrType),
		slog.Int64("input_tokens", rec.Usage.InputTokens),
		slog.Int64("output_tokens", rec.Usage.OutputTokens),
		slog.Int64("cache_read_tokens", rec.Usage.CacheReadTokens),
		slog.Int64("cache_write_tokens", rec.Usage.CacheWriteTokens),
		slog.Bool("usage_known", rec.HasUsage),
		slog.String("quota", rec.Quota),
		slog.Duration("latency", rec.Latency),
		slog.Duration("ttfb", rec.TTFB),
		slog.Duration("overhead", rec.Overhead),
	)
}

// clientAddr is the caller's address for the access log.
func (h *Handler) clientAddr(r *http.Request) string {
	if h.opts.TrustForwardedFor {
		if xff := r.Header.Get("X-Forwarded-For"); xff != "" {
			first, _, _ := strings.Cut(xff, ",")
			return strings.TrimSpace(first)
		}
	}
	return r.RemoteAddr
}
