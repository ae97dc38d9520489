package sim

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bedrock-gateway/gateway/internal/bedrock"
)

// Options configure a Simulator. The zero value answers at once, with
// DefaultOutputTokens output tokens, no faults and no signature check.
type Options struct {
	// Verify checks each request's SigV4 signature (hub credentials); nil means no
	// check. When it fails the simulator answers with the *bedrock.Error it returned
	// (found with errors.As), or else 403 InvalidSignatureException. body is the full
	// request body, already read.
	Verify func(r *http.Request, body []byte) error
	// VerifyStream checks an InvokeModelWithBidirectionalStream request, whose
	// body is not covered by its SigV4 signature (X-Amz-Content-Sha256 is
	// STREAMING-AWS4-HMAC-SHA256-EVENTS): it authenticates r and returns next,
	// which reads one signed envelope from the body, verifies it against the
	// chain and returns its payload (the encoded inner event), end true for the
	// empty envelope that closes the input. Errors are answered as Verify's.
	// nil: Verify(r, nil) checks the request when Verify is set, and envelopes
	// are unwrapped without checking their signatures.
	VerifyStream func(r *http.Request) (next func(body io.Reader) (payload []byte, end bool, err error), err error)
	// Latency is waited before the response headers (X-Sim-Latency overrides it).
	Latency time.Duration
	// FirstEvent is waited after the headers of a stream, before its first event.
	FirstEvent time.Duration
	// EventDelay is waited between stream events (X-Sim-Event-Delay overrides it).
	EventDelay time.Duration
	// OutputTokens is the output length when the request does not cap it lower;
	// 0 means DefaultOutputTokens (X-Sim-Output-Tokens overrides it).
	OutputTokens int
	// FaultRate (0..1) is the probability of injecting Fault into a request that
	// carries no X-Sim-Fault header.
	FaultRate float64
	// Fault is the fault FaultRate injects (one of Faults()); an unknown name acts as
	// FaultInternal.
	Fault string
	// Seed seeds the FaultRate decisions, so a run is reproducible.
	Seed int64
	// Logger receives one debug line per request; nil discards.
	Logger *slog.Logger
	// OnEvent, when set, is called before the simulator writes stream event k
	// (k = 0, 1, 2, ...) of a request, exception frames included. It may block: tests
	// use it to prove a proxy forwards event k before event k+1 exists.
	OnEvent func(r *http.Request, k int)

	// Organization is what the Organizations API stand-in serves
	// (organizations.go); nil answers AWSOrganizationsNotInUseException. An
	// invalid one makes every Organizations call fail with ServiceException
	// (SetOrganization reports the error instead).
	Organization *Organization
	// VerifyOrganizations checks the SigV4 signature of an Organizations call
	// (service organizations; see NewSigV4Check); nil means no check. An error
	// made by OrganizationsError is answered as it says, any other as
	// InvalidSignatureException.
	VerifyOrganizations func(r *http.Request, body []byte) error
	// VerifyCloudWatch checks the SigV4 signature of a CloudWatch call
	// (service monitoring, any region; see NewSigV4Check with
	// CloudWatchPathPrefix); nil means no check. A failure is answered 403
	// SignatureDoesNotMatch.
	VerifyCloudWatch func(r *http.Request, body []byte) error
}

// Observed is one request as the simulator saw it and answered it.
type Observed struct {
	Op      bedrock.Operation
	ModelID string // the decoded model label as received; empty when the path has none
	RawPath string // the path as sent on the wire, still percent-encoded
	// RawQuery is the query string as sent (empty when there is none).
	RawQuery string
	Header   http.Header
	Body     []byte
	Usage    bedrock.Usage // the usage reported to the client (zero when none reached it)
	Status   int           // 0 when the connection was reset or the client went away first
	Fault    string        // the injected fault, if any
}

// Simulator is an http.Handler speaking the Bedrock Runtime wire protocol. It is safe
// for concurrent use and starts no goroutines.
type Simulator struct {
	opts Options
	log  *slog.Logger

	mu       sync.Mutex
	rng      *mrand.Rand
	observed []*record
	totals   bedrock.Usage
	gen      uint64 // bumped by Reset so late reports of earlier requests are dropped
	async    asyncStore
	org      *orgIndex      // the Organizations stand-in's organization; nil: none
	orgErr   error          // why Options.Organization could not be served
	orgCalls map[string]int // Organizations calls per operation
	stsCalls atomic.Int64   // STS requests served (sts.go)
	profiles profileStore   // application inference profiles (bedrock.go)
	cw       *metricStore   // the CloudWatch stand-in's metrics (cloudwatch.go)
}

// record is an Observed being filled in by its handler.
type record struct {
	Observed
	gen uint64
}

// New returns a Simulator with the given options.
func New(opts Options) *Simulator {
	if opts.OutputTokens <= 0 {
		opts.OutputTokens = DefaultOutputTokens
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	seed := uint64(opts.Seed)
	s := &Simulator{
		opts:  opts,
		log:   log,
		rng:   mrand.New(mrand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		async: newAsyncStore(),
		cw:    newMetricStore(),
	}
	s.org, s.orgErr = newOrgIndex(opts.Organization)
	return s
}

// Requests returns a copy of every request observed since New or the last Reset, in
// order of arrival.
func (s *Simulator) Requests() []Observed {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Observed, len(s.observed))
	for i, r := range s.observed {
		out[i] = r.Observed
		out[i].Header = r.Header.Clone()
		out[i].Body = append([]byte(nil), r.Body...)
	}
	return out
}

// Totals returns the sum of the usage reported to clients since New or the last
// Reset (see the package doc for what counts).
func (s *Simulator) Totals() bedrock.Usage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.totals
}

// Reset forgets observed requests, totals, async invocations, the counts of
// Organizations and CloudWatch calls and the usage per model (ModelUsage, the
// AWS/Bedrock metrics); metrics stored by PutMetricData and the inference
// profiles stay.
func (s *Simulator) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.observed = nil
	s.totals = bedrock.Usage{}
	s.gen++
	s.async = newAsyncStore()
	s.orgCalls = nil
	s.cw.resetNamespace(BedrockNamespace)
}

// maxBody is Bedrock's body limit (25,000,000 bytes) plus room for JSON framing.
const maxBody = 26 << 20

// ServeHTTP answers one Bedrock request (or an STS call, see sts.go). A "reset" fault hijacks and closes an
// HTTP/1 connection, or aborts the handler with http.ErrAbortHandler (HTTP/2, and
// streams after their first events), so it needs a real server, not a recorder.
func (s *Simulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if isOrganizations(r) {
		s.serveOrganizations(w, r) // not a Bedrock call: not in Requests or Totals
		return
	}
	if isCloudWatch(r) {
		s.serveCloudWatch(w, r) // the CloudWatch stand-in (cloudwatch.go): not a Bedrock request
		return
	}
	if isSTS(r) {
		s.serveSTS(w, r) // the STS stand-in (sts.go): not a Bedrock request, not observed
		return
	}
	if isControlPlane(r) {
		s.serveControlPlane(w, r) // inference profiles (bedrock.go): not observed
		return
	}
	c := &call{s: s, w: w, r: r, start: time.Now(), requestID: newRequestID()}
	c.rec = s.observe(rawPath(r), r.URL.RawQuery, r.Header.Clone())
	defer c.finish()
	w.Header().Set("X-Amzn-Requestid", c.requestID)
	if route, err := bedrock.ParseRoute(r.Method, c.rec.RawPath); err == nil && route.Op == bedrock.OpInvokeModelWithBidirectionalStream {
		c.route = route
		c.bidi() // full duplex: the body is read event by event (bidi.go)
		return
	}

	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	c.setBody(body)
	if err != nil {
		if _, tooBig := errors.AsType[*http.MaxBytesError](err); tooBig {
			c.fail(bedrock.Validation("The request body is too large."))
		}
		return // the client went away mid-body
	}
	c.body = body

	route, routeErr := bedrock.ParseRoute(r.Method, c.rec.RawPath)
	c.route = route
	s.mu.Lock()
	c.rec.Op, c.rec.ModelID = route.Op, route.ModelID
	s.mu.Unlock()

	if s.opts.Verify != nil {
		if err := s.opts.Verify(r, body); err != nil {
			s.log.Debug("sim: signature rejected", "err", err)
			be, ok := errors.AsType[*bedrock.Error](err)
			if !ok {
				be = bedrock.BadSignature("The request signature we calculated does not match the signature you provided.")
			}
			c.fail(be)
			return
		}
	}
	if routeErr != nil {
		be, ok := errors.AsType[*bedrock.Error](routeErr)
		if !ok {
			be = bedrock.Validation(routeErr.Error())
		}
		c.fail(be)
		return
	}

	if route.Op.HasModel() {
		// An application inference profile answers as the model it copies;
		// Observed and ModelUsage keep the ID the caller used.
		c.route.ModelID = s.resolveProfile(route.ModelID)
	}

	ctl, be := s.controls(r)
	if be != nil {
		c.fail(be)
		return
	}
	c.ctl = ctl
	if !sleepCtx(r.Context(), ctl.latency) {
		return
	}
	if ctl.fault != "" {
		s.mu.Lock()
		c.rec.Fault = ctl.fault
		s.mu.Unlock()
		if !route.Op.Streaming() || ctl.fault != FaultMidstream && ctl.fault != FaultReset {
			c.failFault(ctl.fault)
			return
		}
	}
	c.dispatch()
}

func (s *Simulator) observe(raw, query string, h http.Header) *record {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec := &record{Observed: Observed{RawPath: raw, RawQuery: query, Header: h}, gen: s.gen}
	s.observed = append(s.observed, rec)
	return rec
}

// report records usage that reached the client of a generating operation.
func (s *Simulator) report(rec *record, u bedrock.Usage) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec.Usage = u
	if rec.gen == s.gen {
		s.totals = s.totals.Add(u)
		s.cw.recordModelUsage(signingRegion(rec.Header), rec.ModelID, u, time.Now())
	}
}

// rawPath is the request path exactly as sent, before the query.
func rawPath(r *http.Request) string {
	if p := r.RequestURI; strings.HasPrefix(p, "/") {
		if i := strings.IndexByte(p, '?'); i >= 0 {
			p = p[:i]
		}
		return p
	}
	return r.URL.EscapedPath()
}

func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// controls are the per-request settings: options overridden by X-Sim-* headers.
type controls struct {
	fault      string
	latency    time.Duration
	eventDelay time.Duration
	output     int64
	cacheRead  int64
	cacheWrite int64
}

// The per-request control headers.
const (
	HeaderFault            = "X-Sim-Fault"
	HeaderOutputTokens     = "X-Sim-Output-Tokens"
	HeaderCacheReadTokens  = "X-Sim-Cache-Read-Tokens"
	HeaderCacheWriteTokens = "X-Sim-Cache-Write-Tokens"
	HeaderLatency          = "X-Sim-Latency"
	HeaderEventDelay       = "X-Sim-Event-Delay"
)

// maxHeaderTokens bounds X-Sim-*-Tokens so one request cannot exhaust memory.
const maxHeaderTokens = 1_000_000

func (s *Simulator) controls(r *http.Request) (controls, *bedrock.Error) {
	c := controls{
		latency:    s.opts.Latency,
		eventDelay: s.opts.EventDelay,
		output:     int64(s.opts.OutputTokens),
	}
	h := r.Header
	if v := h.Get(HeaderFault); v != "" {
		if !ValidFault(v) {
			return c, bedrock.Validation(HeaderFault + " must be one of " + strings.Join(Faults(), ", ") + ".")
		}
		c.fault = v
	} else if s.opts.FaultRate > 0 && s.roll() < s.opts.FaultRate {
		c.fault = s.opts.Fault
		if !ValidFault(c.fault) {
			c.fault = FaultInternal
		}
	}
	for _, n := range []struct {
		name string
		dst  *int64
	}{{HeaderOutputTokens, &c.output}, {HeaderCacheReadTokens, &c.cacheRead}, {HeaderCacheWriteTokens, &c.cacheWrite}} {
		if v := h.Get(n.name); v != "" {
			x, err := strconv.ParseInt(v, 10, 64)
			if err != nil || x < 0 || x > maxHeaderTokens {
				return c, bedrock.Validation(n.name + " must be an integer from 0 to " + strconv.Itoa(maxHeaderTokens) + ".")
			}
			*n.dst = x
		}
	}
	for _, d := range []struct {
		name string
		dst  *time.Duration
	}{{HeaderLatency, &c.latency}, {HeaderEventDelay, &c.eventDelay}} {
		if v := h.Get(d.name); v != "" {
			x, err := time.ParseDuration(v)
			if err != nil || x < 0 {
				return c, bedrock.Validation(d.name + " must be a non-negative duration such as 250ms.")
			}
			*d.dst = x
		}
	}
	return c, nil
}

func (s *Simulator) roll() float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rng.Float64()
}

// sleepCtx waits d or until ctx ends; it reports whether ctx is still live.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
