// Package proxy owns the request path: it routes a Bedrock Runtime call,
// authenticates the member, authorizes the entitlement, reserves quota, forwards
// the call upstream re-signed with the hub's credentials, streams the response
// back frame by frame while reading usage from it, and settles and meters.
package proxy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/bedrock-gateway/gateway/internal/authn"
	"github.com/bedrock-gateway/gateway/internal/authz"
	"github.com/bedrock-gateway/gateway/internal/bedrock"
	"github.com/bedrock-gateway/gateway/internal/metering"
	"github.com/bedrock-gateway/gateway/internal/proxy/backendauth"
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

	// BodyReadTimeout bounds the time to receive a request body once its
	// credential passed the header checks (RequestTimeoutException); default
	// 30s. The bidirectional stream's open-ended body is exempt.
	BodyReadTimeout time.Duration
	// MaxInflightBodyBytes bounds the request-body bytes buffered at once by
	// requests not yet answered; beyond it a request gets
	// ServiceUnavailableException and its connection is closed. Default 512 MiB.
	MaxInflightBodyBytes int64
	// BehindTLSProxy says a trusted load balancer terminates TLS in front of
	// the listener: bearer API keys are then accepted over plain HTTP, which
	// otherwise refuses them (the key would have crossed the network in clear).
	BehindTLSProxy bool
	// IAMIdentity, when set, authenticates bearer IAM identity tokens
	// (bgw-iam-v1.…) against STS in the Verifier's place; nil: such tokens
	// are unknown API keys.
	IAMIdentity *authn.IAMVerifier
	// GatewayID is the audience of IAM identity tokens; default
	// authn.DefaultGatewayID of the snapshot's organization id.
	GatewayID string
	// Profiles finds the application inference profile a call of an
	// entitlement with billing.profiles goes to; nil: none is ever found.
	Profiles Profiles
	// OnProfileMissing, when set, hears of each call that wanted a profile
	// and went to the foundation model because none is recorded yet
	// (gateway_billing_profile_missing_total).
	OnProfileMissing func(entitlement string)
}

// Handler serves the Bedrock Runtime API.
type Handler struct {
	opts     Options
	auth     *backendauth.Signer // signs upstream requests with the hub's credentials
	upstream url.URL
	reqIDs   requestIDs
	bufs     sync.Pool // copy buffers of plain answers
	frameBuf sync.Pool // copy buffers of event streams
	prop     propagation.TraceContext
	inflight atomic.Int64
	// cut is cancelled by CutStreams at the shutdown deadline (shutdown.go).
	cut      context.Context
	cutAll   context.CancelCauseFunc
	cutCount atomic.Int64
	// bodyBytes is the request-body memory held by requests not yet
	// answered, charged as it is allocated (see readBody).
	bodyBytes atomic.Int64
	// tracing is false with the no-op tracer: spans are then not started
	// at all (see startSpan).
	tracing    bool
	serverKind trace.SpanStartOption
	paths      modelPaths // upstream paths by operation and model (upstream.go)
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
	if opts.BodyReadTimeout <= 0 {
		opts.BodyReadTimeout = 30 * time.Second
	}
	if opts.MaxInflightBodyBytes <= 0 {
		opts.MaxInflightBodyBytes = 512 << 20
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
	auth, err := backendauth.New(backendauth.Options{Credentials: opts.Credentials})
	if err != nil {
		return nil, err
	}
	_, noTracing := opts.Tracer.(noop.Tracer)
	h := &Handler{opts: opts, auth: auth, upstream: *opts.Upstream,
		tracing: !noTracing, serverKind: trace.WithSpanKind(trace.SpanKindServer)}
	h.upstream.Path, h.upstream.RawPath = "", ""
	h.reqIDs.init()
	h.cut, h.cutAll = context.WithCancelCause(context.Background())
	// One copy buffer per response in flight; 16 KiB carries a typical JSON
	// answer in one read. A stream holds its buffer for as long as it is
	// open while its events are small and arrive a few at a time, so 4 KiB
	// costs no more reads and 12 KiB less per open stream.
	h.bufs.New = func() any { b := make([]byte, 16<<10); return &b }
	h.frameBuf.New = func() any { b := make([]byte, 4<<10); return &b }
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
	pending   authn.Pending // the credential as checked before the body
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
	upstreamStatus int           // the upstream response's status; 0 when none came
	quotaNote      string
	errType        string
	tier           string // the pricing tier the request asked for (bedrock.RequestOptions.PricingTier)
	// denyReason says why an AccessDeniedException was given, for the access
	// log only (the caller gets the one message).
	denyReason string
	// bodyRead: the request body was read to its end (or there was none).
	bodyRead bool
	// bodyCharged is what this request holds of Handler.bodyBytes.
	bodyCharged int64
	// closeConn closes the connection after an error answer (HTTP/2: GOAWAY).
	closeConn bool
	// profile is the application inference profile ARN the call goes to
	// instead of the foundation model (billing.profiles); empty: the model.
	profile string
}

func (c *call) entitlementName() string {
	if c.decision != nil {
		return c.decision.Entitlement.Name
	}
	return ""
}

// startSpan is Tracer.Start, skipped when tracing is off: even the no-op
// tracer puts each span in a new context, six allocations per request for
// nothing. The span returned then is the context's own (a no-op, or the
// caller's remote span context, which propagation still carries upstream).
func (h *Handler) startSpan(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	if !h.tracing {
		return ctx, trace.SpanFromContext(ctx)
	}
	return h.opts.Tracer.Start(ctx, name, opts...)
}

// ServeHTTP implements the request path.
func (h *Handler) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	c := &call{start: h.opts.Now(), requestID: h.reqIDs.next()}
	h.inflight.Add(1)
	h.opts.Metrics.Inflight().Inc()
	w := newResponseWriter(rw)
	ctx := h.prop.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
	ctx, span := h.startSpan(ctx, "bedrock-gateway", h.serverKind)
	defer func() {
		h.emitAccess(ctx, span, h.accessRecord(w, r, c))
		if c.bodyCharged != 0 {
			h.bodyBytes.Add(-c.bodyCharged) // answered: the body no longer counts
		}
		h.inflight.Add(-1)
		h.opts.Metrics.Inflight().Dec()
	}()
	if err := h.serve(ctx, w, r, c); err != nil {
		h.fail(w, r, c, err)
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
	}
	snap := h.opts.Snapshots.Current()
	if snap == nil {
		return bedrock.Unavailable("The gateway is starting and has not loaded its state yet.")
	}
	if authn.IsBearer(r.Header.Get("Authorization")) && r.TLS == nil && !h.opts.BehindTLSProxy {
		// Refused before the key is even looked up: plain HTTP must not
		// become a way to test keys, nor a habit of sending them in clear.
		return bedrock.Unrecognized("API keys (Authorization: Bearer) are accepted only over HTTPS.")
	}

	_, aspan := h.startSpan(ctx, "authenticate")
	res, err := h.authenticate(w, r, c, snap, bidi)
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
	if snap.PrincipalDenied(c.principal()) {
		// The deny list is the emergency stop for an IAM role or user: it
		// refuses like a revoked key, before anything else is looked at.
		c.denyReason = "principal_denied"
		return bedrock.Unrecognized("The security token included in the request is invalid.")
	}
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

	_, zspan := h.startSpan(ctx, "authorize")
	err = h.authorize(c, snap)
	zspan.End()
	if err != nil {
		return err
	}
	if err := h.checkAsyncOwner(ctx, c); err != nil {
		return err
	}
	w.Header().Set("X-Gateway-Entitlement", c.decision.Entitlement.Name)
	h.chooseProfile(c)
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
		for _, e := range snap.EntitlementsAs(c.account.ID, c.principal()) {
			// ApplyGuardrail names its guardrail: only an entitlement that
			// lists it can carry the call.
			if e.Allows(c.route.Op) && (c.route.Op != bedrock.OpApplyGuardrail || e.AllowsGuardrail(c.route.GuardrailID)) {
				d, err := snap.AuthorizeAs(c.account.ID, c.principal(), c.route.Op, e.Name)
				if err == nil {
					c.decision = d
					return nil
				}
			}
		}
		c.denyReason = "no_entitlement_allows_operation"
		return bedrock.AccessDenied(deniedMessage)
	}
	d, err := snap.AuthorizeAs(c.account.ID, c.principal(), c.route.Op, c.route.ModelID)
	if err != nil {
		return err
	}
	c.decision = d
	return nil
}

const deniedMessage = "You don't have access to the model with the specified model ID."

// authenticate checks the credential in two steps around the body: first
// everything the headers decide (a request that cannot be valid is refused
// before its body costs anything), then, once a known key's body is read,
// the signature over it.
func (h *Handler) authenticate(w *responseWriter, r *http.Request, c *call, snap *authz.Snapshot, bidi bool) (*authn.Result, error) {
	if err := h.begin(r, c, snap); err != nil {
		return nil, err
	}
	if bidi {
		return h.opts.Verifier.Finish(r, &c.pending, authn.StreamingEvents)
	}
	if err := h.readBody(w, r, c); err != nil {
		return nil, err
	}
	var hashHex [64]byte
	hex.Encode(hashHex[:], c.bodyHash[:])
	return h.opts.Verifier.Finish(r, &c.pending, string(hashHex[:]))
}

// begin runs the header checks of authentication: an IAM identity token is
// verified (against STS, cached) when IAM identity is on, anything else by
// the Verifier.
func (h *Handler) begin(r *http.Request, c *call, snap *authz.Snapshot) error {
	if h.opts.IAMIdentity != nil {
		id := h.opts.GatewayID
		if id == "" {
			id = authn.DefaultGatewayID(snap.State().Organization.ID)
		}
		if handled, err := h.opts.IAMIdentity.Begin(r.Context(), r, id, &c.pending); handled {
			return err
		}
	}
	return h.opts.Verifier.Begin(r, snap, &c.pending)
}

// Request bodies are read into a buffer that grows as bytes arrive: a first
// chunk of at most firstBodyChunk (or the declared length, when smaller, so
// that a typical request is one allocation), then doubling, never beyond the
// declared length. Content-Length alone never allocates more: a client may
// declare 25 MB and send nothing.
const (
	firstBodyChunk      = 32 << 10
	firstChunkUnsized   = 4 << 10
	bodyTimeoutMessage  = "Your socket connection to the server was not read from or written to within the timeout period."
	bodyOverloadMessage = "The gateway is receiving too many request bodies at once. Please reduce your request rate and retry."
)

// readBody reads the whole request body (bounded by MaxBodyBytes, within
// BodyReadTimeout, charged to the in-flight body budget) and hashes it once.
func (h *Handler) readBody(w *responseWriter, r *http.Request, c *call) error {
	limit := h.opts.MaxBodyBytes
	if r.ContentLength > limit {
		return h.bodyTooLarge()
	}
	if r.Body == nil || r.Body == http.NoBody {
		c.bodyHash = sha256.Sum256(nil)
		c.bodyRead = true
		return nil
	}
	// A per-request read deadline rather than the server's ReadTimeout,
	// which would also cut the bidirectional stream's open-ended body. It is
	// lifted once the body is in (HTTP/1's background read, which watches
	// for the client leaving during a long stream, must not inherit it), and
	// left in place on failure (net/http must not wait for the rest).
	rc := http.NewResponseController(w)
	deadline := rc.SetReadDeadline(time.Now().Add(h.opts.BodyReadTimeout)) == nil

	size := int64(firstChunkUnsized)
	if r.ContentLength >= 0 {
		// +1: room to see the end of the body without growing.
		size = min(r.ContentLength+1, firstBodyChunk)
	}
	if !h.chargeBody(c, size) {
		c.closeConn = true
		return bedrock.Unavailable(bodyOverloadMessage)
	}
	buf := make([]byte, 0, size)
	for {
		if len(buf) == cap(buf) {
			if int64(len(buf)) > limit {
				return h.bodyTooLarge()
			}
			next := min(2*int64(cap(buf)), limit+1)
			if r.ContentLength >= 0 {
				// net/http never delivers more than the declared length.
				next = min(next, r.ContentLength+1)
			}
			next = max(next, int64(cap(buf))+1)
			if !h.chargeBody(c, next) {
				c.closeConn = true
				return bedrock.Unavailable(bodyOverloadMessage)
			}
			grown := make([]byte, len(buf), next)
			copy(grown, buf)
			h.chargeBody(c, -int64(cap(buf)))
			buf = grown
		}
		n, err := r.Body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			var ne net.Error
			if errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &ne) && ne.Timeout() {
				c.closeConn = true
				return bedrock.RequestTimeout(bodyTimeoutMessage)
			}
			return bedrock.Validation("The request body could not be read.")
		}
	}
	if int64(len(buf)) > limit {
		return h.bodyTooLarge()
	}
	if deadline {
		_ = rc.SetReadDeadline(time.Time{})
	}
	c.bodyRead = true
	c.body = buf
	c.bodyHash = sha256.Sum256(c.body)
	return nil
}

func (h *Handler) bodyTooLarge() error {
	return bedrock.Validation("The request body exceeds the maximum size of " + strconv.FormatInt(h.opts.MaxBodyBytes, 10) + " bytes.")
}

// chargeBody adds n bytes to the in-flight body budget for c, or refuses
// when that would exceed MaxInflightBodyBytes. Releases (n < 0) always succeed.
func (h *Handler) chargeBody(c *call, n int64) bool {
	if h.bodyBytes.Add(n) > h.opts.MaxInflightBodyBytes && n > 0 {
		h.bodyBytes.Add(-n)
		return false
	}
	c.bodyCharged += n
	return true
}

// rawPath is the request target's path exactly as sent, before '?'.
func rawPath(r *http.Request) string {
	p := r.RequestURI
	if p == "" || p == "*" || p[0] != '/' {
		p = r.URL.EscapedPath()
	}
	if i := strings.IndexByte(p, '?'); i >= 0 {
		p = p[:i]
	}
	return p
}

// fail writes a gateway-made error, unless the response has already started.
func (h *Handler) fail(w *responseWriter, r *http.Request, c *call, err error) {
	be := toBedrockError(err)
	c.errType = be.Type
	if r := authz.ReasonOf(err); r != "" {
		c.denyReason = string(r)
	}
	if !isClientFacing(err) {
		h.opts.Logger.Error("request failed", "request_id", c.requestID, "error", err)
	}
	if w.wroteHeader {
		return
	}
	// HTTP/1 would otherwise wait to discard a body that was never read
	// (up to 256 KiB, with no deadline), held by a client that may never
	// send it; closing costs an honest client one reconnect.
	unread := !c.bodyRead && r.ProtoMajor == 1 && r.Body != nil && r.Body != http.NoBody
	if c.closeConn || unread {
		w.Header().Set("Connection", "close")
		if r.ProtoMajor == 1 {
			// Even when closing, net/http first tries to drain a short
			// unread body; an expired read deadline makes that fail at once.
			_ = http.NewResponseController(w).SetReadDeadline(time.Now())
		}
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
