// Package proxy owns the request path: it routes a Bedrock Runtime call,
// authenticates the member, authorizes the entitlement, reserves quota, forwards
// the call upstream re-signed with the hub's credentials, streams the response
// back frame by frame while reading usage from it, and settles and meters.
package proxy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/bedrock-gateway/gateway/internal/authn"
	"github.com/bedrock-gateway/gateway/internal/authz"
	"github.com/bedrock-gateway/gateway/internal/bedrock"
	"github.com/bedrock-gateway/gateway/internal/metering"
)

// Snapshots gives the authorization snapshot currently in force (nil until the
// first one is loaded).
type Snapshots interface {
	Current() *authz.Snapshot
}

// Options configure a Handler. Zero values take the documented defaults.
type Options struct {
	// Upstream is the Bedrock Runtime base URL, e.g. https://bedrock-runtime.us-east-1.amazonaws.com.
	Upstream *url.URL
	// Region and Credentials sign upstream requests (service "bedrock").
	Region string
	// PerEntitlementRegion sends a call to bedrock-runtime.<region>.amazonaws.com
	// (signed for that region) when its entitlement names a region other than
	// Region. Leave it off when Upstream is a custom endpoint (a simulator, a VPC
	// endpoint), which serves one region.
	PerEntitlementRegion bool
	Credentials          aws.CredentialsProvider
	// Transport carries upstream requests; default NewTransport(TransportOptions{}).
	Transport http.RoundTripper
	// HeaderTimeout bounds the wait for upstream response headers (ModelTimeoutException); default 300s.
	HeaderTimeout time.Duration
	// DrainTimeout bounds how long the upstream is still read after the client went away; default 60s.
	DrainTimeout time.Duration
	// MaxBodyBytes bounds request bodies; default 25,000,000.
	MaxBodyBytes int64
	// DefaultMaxOutput is reserved when a request names no output maximum; default 4096.
	DefaultMaxOutput int64
	// MaxOutput holds each model's maximum output, reserved by entitlements
	// with strict estimates for a request that names none; nil = the built-in table.
	MaxOutput *bedrock.MaxOutputTable

	Snapshots Snapshots
	Verifier  *authn.Verifier
	Quota     Quota // nil: no caps and no ledger (tests of the core only)
	// AsyncOwners keeps members' asynchronous invocations apart; nil: no
	// filtering (a single-tenant setup or tests of the core).
	AsyncOwners AsyncOwners
	Metrics     *metering.Metrics
	Tracer      trace.Tracer // default no-op
	Logger      *slog.Logger
	// Now is the clock for request timing; default time.Now.
	Now func() time.Time
	// TrustForwardedFor logs the first X-Forwarded-For address as the client
	// (behind a load balancer that sets it); otherwise the peer address.
	TrustForwardedFor bool
}

// Handler serves the Bedrock Runtime API.
type Handler struct {
	opts     Options
	signer   *v4.Signer
	upstream url.URL
	reqIDs   requestIDs
	bufs     sync.Pool
	prop     propagation.TraceContext
	inflight atomic.Int64
	// cut is cancelled by CutStreams at the shutdown deadline (shutdown.go).
	cut      context.Context
	cutAll   context.CancelCauseFunc
	cutCount atomic.Int64
}

// New builds a Handler.
func New(opts Options) (*Handler, error) {
	if opts.Upstream == nil {
		return nil, errors.New("proxy: Upstream is required")
	}
	if opts.Snapshots == nil || opts.Verifier == nil || opts.Credentials == nil {
		return nil, errors.New("proxy: Snapshots, Verifier and Credentials are required")
	}
	if opts.Region == "" {
		return nil, errors.New("proxy: Region is required")
	}
	if opts.Transport == nil {
		opts.Transport = NewTransport(TransportOptions{})
	}
	if opts.HeaderTimeout <= 0 {
		opts.HeaderTimeout = 300 * time.Second
	}
	if opts.DrainTimeout <= 0 {
		opts.DrainTimeout = 60 * time.Second
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 25_000_000
	}
	if opts.DefaultMaxOutput <= 0 {
		opts.DefaultMaxOutput = 4096
	}
	if opts.Metrics == nil {
		opts.Metrics = metering.NewMetrics(metering.Options{})
	}
	if opts.Tracer == nil {
		opts.Tracer = noop.NewTracerProvider().Tracer("")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	h := &Handler{opts: opts, signer: v4.NewSigner(), upstream: *opts.Upstream}
	h.upstream.Path, h.upstream.RawPath = "", ""
	h.reqIDs.init()
	h.cut, h.cutAll = context.WithCancelCause(context.Background())
	// One copy buffer per response in flight; 16 KiB carries a typical JSON
	// answer in one read and is far larger than a stream event.
	h.bufs.New = func() any { b := make([]byte, 16<<10); return &b }
	return h, nil
}

// Inflight reports requests being served now (for graceful drain).
func (h *Handler) Inflight() int64 { return h.inflight.Load() }

// call is the state of one request as it moves through the path.
type call struct {
	start     time.Time
	requestID string
	route     bedrock.Route
	cred      *authn.Credential
	account   *authz.Account
	decision  *authz.Decision
	body      []byte
	bodyHash  [32]byte
	ticket    Ticket
	estimate  bedrock.Estimate
	usage     bedrock.Usage
	hasUsage  bool
	// outputSeen estimates the output generated when the usage is unknown;
	// partialInput is an input count the stream itself reported (Anthropic's
	// message_start), 0 when none.
	outputSeen   int64
	partialInput int64
	// upstreamFailed: the upstream failed after the response started (an
	// exception frame or a broken stream), as opposed to the client leaving
	// or the gateway shutting down.
	upstreamFailed bool
	upstream       time.Duration // time spent waiting on the upstream
	quotaNote      string
	errType        string
	tier           string // the pricing tier the request asked for (bedrock.RequestOptions.PricingTier)
}

func (c *call) entitlementName() string {
	if c.decision != nil {
		return c.decision.Entitlement.Name
	}
	return ""
}

// ServeHTTP implements the request path.
func (h *Handler) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	c := &call{start: h.opts.Now(), requestID: h.reqIDs.next()}
	h.inflight.Add(1)
	h.opts.Metrics.Inflight().Inc()
	w := newResponseWriter(rw)
	ctx := h.prop.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
	ctx, span := h.opts.Tracer.Start(ctx, "bedrock-gateway", trace.WithSpanKind(trace.SpanKindServer))
	defer func() {
		h.finish(ctx, w, r, c, span)
		h.inflight.Add(-1)
		h.opts.Metrics.Inflight().Dec()
	}()
	if err := h.serve(ctx, w, r, c); err != nil {
		h.fail(w, c, err)
		span.SetStatus(codes.Error, c.errType)
	}
}

// serve runs the request path; a returned error has not been written yet.
func (h *Handler) serve(ctx context.Context, w *responseWriter, r *http.Request, c *call) error {
	route, err := bedrock.ParseRoute(r.Method, rawPath(r))
	if err != nil {
		return err
	}
	c.route = route
	if r.Header.Get("Authorization") == "" {
		return bedrock.Unrecognized("Missing Authentication Token")
	}
	// The bidirectional stream's body is a chain of signed events, verified
	// as it streams (bidi.go): it is never read up front.
	bidi := route.Op == bedrock.OpInvokeModelWithBidirectionalStream
	if bidi {
		if err := checkBidiProtocol(w, r); err != nil {
			return err
		}
	} else if err := h.readBody(r, c); err != nil {
		return err
	}
	snap := h.opts.Snapshots.Current()
	if snap == nil {
		return bedrock.Unavailable("The gateway is starting and has not loaded its state yet.")
	}

	_, aspan := h.opts.Tracer.Start(ctx, "authenticate")
	var hashHex [64]byte
	hex.Encode(hashHex[:], c.bodyHash[:])
	payloadHash := string(hashHex[:])
	if bidi {
		payloadHash = authn.StreamingEvents
	}
	res, err := h.opts.Verifier.Authenticate(r, payloadHash, snap)
	aspan.End()
	if err != nil {
		return err
	}
	switch {
	case bidi:
		if err := checkBidiAuth(res); err != nil {
			return err
		}
	case res.PayloadHash == authn.StreamingEvents:
		// Only the bidirectional stream signs its body chunk by chunk.
		return bedrock.BadSignature("STREAMING-AWS4-HMAC-SHA256-EVENTS is only valid for InvokeModelWithBidirectionalStream.")
	case res.PayloadHash == authn.UnsignedPayload && r.TLS == nil:
		// Over plain HTTP an unsigned body could be replaced in transit.
		return bedrock.BadSignature("UNSIGNED-PAYLOAD is accepted only over HTTPS.")
	}
	c.cred = res.Credential
	acct, ok := snap.Account(c.cred.Account)
	if !ok {
		// The credential's account left the organization: treat it like an unknown key.
		return bedrock.Unrecognized("The security token included in the request is invalid.")
	}
	c.account = acct

	switch route.Op {
	case bedrock.OpListFoundationModels:
		return h.listModels(w, r, c, snap)
	case bedrock.OpGetFoundationModel:
		return h.getModel(w, c, snap)
	}

	_, zspan := h.opts.Tracer.Start(ctx, "authorize")
	err = h.authorize(c, snap)
	zspan.End()
	if err != nil {
		return err
	}
	if err := h.checkAsyncOwner(ctx, c); err != nil {
		return err
	}
	w.Header().Set("X-Gateway-Entitlement", c.decision.Entitlement.Name)
	if err := h.inspect(r, c); err != nil {
		return err
	}

	if route.Op.Generates() {
		if err := h.reserve(ctx, w, c); err != nil {
			return err
		}
	}
	if bidi {
		return h.serveBidi(ctx, w, r, c, res)
	}
	return h.forward(ctx, w, r, c)
}

// authorize resolves the entitlement for the operation.
func (h *Handler) authorize(c *call, snap *authz.Snapshot) error {
	switch c.route.Op {
	case bedrock.OpStartAsyncInvoke:
		return h.authorizeAsyncStart(c, snap)
	case bedrock.OpApplyGuardrail, bedrock.OpInvokeGuardrailChecks, bedrock.OpGetAsyncInvoke, bedrock.OpListAsyncInvokes:
		// These name no model: the caller needs an entitlement that allows the operation.
		for _, e := range snap.EntitlementsFor(c.account.ID) {
			// ApplyGuardrail names its guardrail: only an entitlement that
			// lists it can carry the call.
			if e.Allows(c.route.Op) && (c.route.Op != bedrock.OpApplyGuardrail || e.AllowsGuardrail(c.route.GuardrailID)) {
				d, err := snap.Authorize(c.account.ID, c.route.Op, e.Name)
				if err == nil {
					c.decision = d
					return nil
				}
			}
		}
		return bedrock.AccessDenied(deniedMessage)
	}
	d, err := snap.Authorize(c.account.ID, c.route.Op, c.route.ModelID)
	if err != nil {
		return err
	}
	c.decision = d
	return nil
}

const deniedMessage = "You don't have access to the model with the specified model ID."

// readBody reads the whole request body (bounded) and hashes it once.
func (h *Handler) readBody(r *http.Request, c *call) error {
	tooLarge := bedrock.Validation("The request body exceeds the maximum size of " + strconv.FormatInt(h.opts.MaxBodyBytes, 10) + " bytes.")
	if r.ContentLength > h.opts.MaxBodyBytes {
		return tooLarge
	}
	if r.Body == nil || r.Body == http.NoBody {
		c.bodyHash = sha256.Sum256(nil)
		return nil
	}
	size := r.ContentLength
	if size < 0 {
		size = 4096
	}
	buf := bytes.NewBuffer(make([]byte, 0, size+1))
	n, err := buf.ReadFrom(io.LimitReader(r.Body, h.opts.MaxBodyBytes+1))
	if err != nil {
		return bedrock.Validation("The request body could not be read.")
	}
	if n > h.opts.MaxBodyBytes {
		return tooLarge
	}
	c.body = buf.Bytes()
	c.bodyHash = sha256.Sum256(c.body)
	return nil
}

// rawPath is the request target's path exactly as sent, before '?'.
func rawPath(r *http.Request) string {
	p := r.RequestURI
	if p == "" || p == "*" || p[0] != '/' {
		p = r.URL.EscapedPath()
	}
	if i := indexByte(p, '?'); i >= 0 {
		p = p[:i]
	}
	return p
}

func indexByte(s string, b byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == b {
			return i
		}
	}
	return -1
}

// fail writes a gateway-made error, unless the response has already started.
func (h *Handler) fail(w *responseWriter, c *call, err error) {
	be := toBedrockError(err)
	c.errType = be.Type
	if !isClientFacing(err) {
		h.opts.Logger.Error("request failed", "request_id", c.requestID, "error", err)
	}
	if w.wroteHeader {
		return
	}
	bedrock.WriteError(w, c.requestID, be)
}

// toBedrockError maps any error to the shape the client sees: the one place
// where internal errors become Bedrock errors.
func toBedrockError(err error) *bedrock.Error {
	var be *bedrock.Error
	if errors.As(err, &be) {
		return be
	}
	var rej *Rejection
	if errors.As(err, &rej) {
		return rej.Err
	}
	return bedrock.Internal("The gateway encountered an internal error.")
}

func isClientFacing(err error) bool {
	var be *bedrock.Error
	var rej *Rejection
	return errors.As(err, &be) || errors.As(err, &rej)
}

// finish meters and logs the request.
func (h *Handler) finish(ctx context.Context, w *responseWriter, r *http.Request, c *call, span trace.Span) {
	end := h.opts.Now()
	total := end.Sub(c.start)
	status := w.status
	if status == 0 {
		status = http.StatusOK
	}
	code := status
	if w.clientGone {
		code = 499 // client closed the request (nginx's convention)
	}
	var ttfb time.Duration
	if !w.firstByte.IsZero() {
		ttfb = w.firstByte.Sub(c.start)
	}
	overhead := total - c.upstream
	if overhead < 0 {
		overhead = 0
	}
	team, account := "", ""
	if c.account != nil {
		team, account = c.account.Team, c.account.ID
	}
	model := ""
	if c.decision != nil {
		model = c.decision.UpstreamModel
	}
	h.opts.Metrics.Observe(metering.Request{
		Entitlement: c.entitlementName(), Team: team, Account: account, Model: model,
		Op: c.route.Op, Code: code, Duration: total, TTFB: ttfb, Overhead: overhead,
		Usage: c.usage, HasUsage: c.hasUsage, Tier: c.tier,
	})
	if span.IsRecording() {
		span.SetAttributes(
			attribute.String("gen_ai.system", "aws.bedrock"),
			attribute.String("gen_ai.operation.name", c.route.Op.String()),
			attribute.String("gen_ai.request.model", model),
			attribute.String("gateway.entitlement", c.entitlementName()),
			attribute.String("gateway.account", account),
			attribute.String("gateway.team", team),
			attribute.String("aws.request_id", c.requestID),
			attribute.Int("http.response.status_code", status),
		)
		if c.hasUsage {
			span.SetAttributes(
				attribute.Int64("gen_ai.usage.input_tokens", c.usage.InputTokens),
				attribute.Int64("gen_ai.usage.output_tokens", c.usage.OutputTokens),
			)
		}
	}
	span.End()
	lvl := slog.LevelInfo
	if status >= 500 {
		lvl = slog.LevelWarn
	}
	if !h.opts.Logger.Enabled(ctx, lvl) {
		return
	}
	label := ""
	if c.cred != nil {
		label = c.cred.Label
	}
	h.opts.Logger.LogAttrs(ctx, lvl, "request",
		slog.String("request_id", c.requestID),
		slog.String("client", h.clientAddr(r)),
		slog.String("operation", c.route.Op.String()),
		slog.String("account", account),
		slog.String("team", team),
		slog.String("credential", label),
		slog.String("entitlement", c.entitlementName()),
		slog.String("model", model),
		slog.String("tier", c.tier),
		slog.Int("status", code),
		slog.String("error", c.errType),
		slog.Int64("input_tokens", c.usage.InputTokens),
		slog.Int64("output_tokens", c.usage.OutputTokens),
		slog.Int64("cache_read_tokens", c.usage.CacheReadTokens),
		slog.Int64("cache_write_tokens", c.usage.CacheWriteTokens),
		slog.Bool("usage_known", c.hasUsage),
		slog.String("quota", c.quotaNote),
		slog.Duration("latency", total),
		slog.Duration("ttfb", ttfb),
		slog.Duration("overhead", overhead),
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
