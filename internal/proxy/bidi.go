package proxy

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"go.opentelemetry.io/otel/propagation"

	"github.com/bedrock-gateway/gateway/internal/authn"
	"github.com/bedrock-gateway/gateway/internal/bedrock"
)

// InvokeModelWithBidirectionalStream (wire doc §2.5) is full duplex over
// HTTP/2: the caller's body is a chain of envelopes signed with the caller's
// key, the response an ordinary event stream. The gateway verifies each
// envelope as it arrives, re-signs its inner event into a chain seeded by the
// upstream request's own signature (hub key), and writes it into the upstream
// request's body while the upstream's answer streams back, frame by frame.
//
// Two goroutines share the work: a pump reads the caller's body and writes the
// upstream body; the handler goroutine reads the upstream response and is the
// only one writing to the client. The pump never outlives the handler.

const eventStreamType = "application/vnd.amazon.eventstream"

// errBidiDone ends the upstream body when the session is over;
// errBadEnvelope when the caller's chain broke.
var (
	errBidiDone    = errors.New("bidirectional session over")
	errBadEnvelope = errors.New("caller sent an invalid envelope")
)

// checkBidiProtocol refuses the bidirectional stream over HTTP/1.x, as Bedrock
// does. The connection is then closed after the answer: the client's body (an
// open-ended event stream) will not be read, and net/http would otherwise wait
// for its end before answering.
func checkBidiProtocol(w http.ResponseWriter, r *http.Request) error {
	if r.ProtoMajor < 2 {
		w.Header().Set("Connection", "close")
		return bedrock.Validation("InvokeModelWithBidirectionalStream requires HTTP/2.")
	}
	return nil
}

// checkBidiAuth accepts only SigV4 requests whose body is a signed envelope
// chain: anything else would leave the body unauthenticated.
func checkBidiAuth(res *authn.Result) error {
	if res.Credential == nil || res.Credential.Kind != authn.KindSigV4 {
		return bedrock.Validation("InvokeModelWithBidirectionalStream requires SigV4 authentication; API keys cannot sign its events.")
	}
	if res.PayloadHash != authn.StreamingEvents {
		return bedrock.BadSignature("InvokeModelWithBidirectionalStream must be signed with X-Amz-Content-Sha256: " + authn.StreamingEvents + ".")
	}
	return nil
}

// serveBidi forwards an authenticated, authorized and reserved bidirectional
// stream. A returned error has not been written yet.
func (h *Handler) serveBidi(ctx context.Context, w *responseWriter, r *http.Request, c *call, res *authn.Result) (err error) {
	defer func() {
		if err != nil {
			h.release(ctx, c)
		}
	}()
	cv, err := h.opts.Verifier.NewChunkVerifier(res)
	if err != nil {
		return err
	}

	// As in forward: the upstream outlives the client, bounded by DrainTimeout,
	// so the usage of a session the client left is still learned.
	upCtx, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
	defer cancel(nil)
	var drain atomic.Pointer[time.Timer]
	stopDrain := context.AfterFunc(r.Context(), func() {
		drain.Store(time.AfterFunc(h.opts.DrainTimeout, func() { cancel(errDrainTimeout) }))
	})
	stopCut := h.watchCut(cancel)
	defer func() {
		stopDrain()
		stopCut()
		if t := drain.Load(); t != nil {
			t.Stop()
		}
	}()

	traceCtx, span := h.opts.Tracer.Start(ctx, "upstream")
	defer span.End()
	transport, closeTransport := h.bidiTransport()
	defer closeTransport() // last: after the pump and the response body are done

	pr, pw := io.Pipe()
	out, signer, err := h.bidiUpstreamRequest(upCtx, traceCtx, r, c, pr)
	if err != nil {
		return err
	}
	p := &bidiPump{
		in: &bedrock.ReadRecorder{R: r.Body}, closeIn: func() { _ = r.Body.Close() },
		cv: cv, signer: signer, pr: pr, pw: pw, cancel: cancel, done: make(chan struct{}),
	}
	go p.run()
	defer p.stop()

	headerTimer := time.AfterFunc(h.opts.HeaderTimeout, func() { cancel(errHeaderTimeout) })
	t0 := time.Now()
	resp, err := transport.RoundTrip(out)
	headerTimer.Stop()
	c.upstream += time.Since(t0)
	if err != nil {
		p.stop()
		if be := p.failure.Load(); be != nil {
			return be // the caller's chain broke before the upstream answered
		}
		return h.roundTripError(upCtx, w, r, c, err)
	}
	defer resp.Body.Close()
	copyResponseHeaders(w.Header(), resp.Header)
	if resp.StatusCode != http.StatusOK {
		// Upstream errors pass through unchanged; nothing is charged.
		p.stop()
		h.release(ctx, c)
		w.WriteHeader(resp.StatusCode)
		h.copyPlain(w, resp, c, nil)
		c.errType = resp.Header.Get("X-Amzn-Errortype")
		return nil
	}
	w.WriteHeader(http.StatusOK)
	w.Flush() // the client may wait for the headers before it sends
	abort := h.copyBidi(upCtx, w, resp.Body, c, p)
	switch {
	case c.hasUsage || p.forwarded.Load() > 0:
		h.settle(ctx, c) // the estimate when the usage is unknown
	default:
		h.release(ctx, c) // the upstream never saw an event
	}
	if abort {
		panic(http.ErrAbortHandler) // as forward: a broken stream, not a clean end
	}
	return nil
}

// bidiUpstreamRequest builds the upstream request, signed with the hub
// credentials for a streamed body, and the signer continuing its chain.
func (h *Handler) bidiUpstreamRequest(ctx, traceCtx context.Context, r *http.Request, c *call, body io.Reader) (*http.Request, *authn.ChunkSigner, error) {
	u, region := h.upstreamFor(c)
	u.RawPath = bedrock.ModelPath(c.route.Op, c.decision.UpstreamModel)
	p, err := pathUnescape(u.RawPath)
	if err != nil {
		return nil, nil, bedrock.Validation("The path contains a malformed percent-encoded label.")
	}
	u.Path = p
	if u.RawQuery, err = bedrock.UpstreamQuery(c.route.Op, r.URL.RawQuery); err != nil {
		return nil, nil, err
	}
	out, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), body)
	if err != nil {
		return nil, nil, err
	}
	out.URL.Path, out.URL.RawPath = u.Path, u.RawPath
	copyRequestHeaders(out.Header, r.Header)
	h.prop.Inject(traceCtx, propagation.HeaderCarrier(out.Header))
	out.Header.Set("Content-Type", eventStreamType)
	out.Header.Set("X-Amz-Content-Sha256", authn.StreamingEvents)
	out.ContentLength = -1 // streamed
	creds, err := h.opts.Credentials.Retrieve(ctx)
	if err != nil {
		h.opts.Logger.Error("retrieving hub credentials", "error", err)
		return nil, nil, bedrock.Unavailable("The gateway could not obtain its upstream credentials.")
	}
	if err := h.signer.SignHTTP(ctx, creds, out, authn.StreamingEvents, "bedrock", region, time.Now().UTC()); err != nil {
		return nil, nil, err
	}
	seed, err := v4.GetSignedRequestSignature(out)
	if err != nil {
		return nil, nil, err
	}
	return out, authn.NewChunkSigner(authn.ChunkSignerOptions{Credentials: creds, Region: region, Seed: seed}), nil
}

// bidiTransport returns the transport for one session and what to call when
// it is over. The session needs HTTP/2 upstream for a full-duplex body: over
// https the pooled transport negotiates it (ALPN); over plain http (the
// simulator) a transport speaking h2c only, with a connection of the session's
// own, closed when the session ends so nothing of it outlives the handler.
// Sessions are long-lived, so one connection each costs little.
func (h *Handler) bidiTransport() (http.RoundTripper, func()) {
	if h.upstream.Scheme == "https" {
		return h.opts.Transport, func() {}
	}
	var conns connSet
	d := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	var protos http.Protocols
	protos.SetUnencryptedHTTP2(true)
	t := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			conn, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return conns.add(conn), nil
		},
		Protocols:          &protos,
		DisableCompression: true,
		ReadBufferSize:     32 << 10,
		WriteBufferSize:    32 << 10,
	}
	return t, func() {
		t.CloseIdleConnections()
		conns.closeAll()
	}
}

// connSet tracks a session's upstream connections so they can be closed.
type connSet struct {
	mu     sync.Mutex
	conns  []net.Conn
	closed bool
}

func (s *connSet) add(c net.Conn) net.Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		_ = c.Close()
	}
	s.conns = append(s.conns, c)
	return c
}

func (s *connSet) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for _, c := range s.conns {
		_ = c.Close()
	}
	s.conns = nil
}

// bidiPump moves the caller's events upstream: verify, unwrap, re-sign.
type bidiPump struct {
	in      *bedrock.ReadRecorder
	closeIn func()
	cv      *authn.ChunkVerifier
	signer  *authn.ChunkSigner
	pr      *io.PipeReader
	pw      *io.PipeWriter
	cancel  context.CancelCauseFunc
	done    chan struct{}

	forwarded atomic.Int64                  // events written upstream
	failure   atomic.Pointer[bedrock.Error] // set when the caller's chain broke
	stopOnce  sync.Once
}

func (p *bidiPump) run() {
	defer close(p.done)
	for {
		payload, end, err := p.cv.Next(p.in)
		switch {
		case err != nil && p.in.Err != nil:
			// The input ended without its closing envelope or broke off (the
			// client went away): close the upstream's input properly, so the
			// model finishes and reports what the session used.
			p.endInput()
			return
		case err != nil:
			be, ok := errors.AsType[*bedrock.Error](err)
			if !ok {
				be = bedrock.BadSignature("Invalid signed event stream envelope.")
			}
			p.failure.Store(be)
			p.pw.CloseWithError(errBadEnvelope)
			p.cancel(errBadEnvelope)
			return
		case end:
			p.endInput()
			return
		}
		if p.signer.WriteEnvelope(p.pw, payload) != nil {
			return // the upstream stopped reading: the session is over
		}
		p.forwarded.Add(1)
	}
}

func (p *bidiPump) endInput() {
	if p.signer.WriteEnvelope(p.pw, nil) == nil {
		_ = p.pw.Close()
	}
}

// stop ends the pump (unblocking a read of the caller's body or a write
// upstream) and waits for it. The caller's body is closed: nothing more of it
// is read once the session is over.
func (p *bidiPump) stop() {
	p.stopOnce.Do(func() {
		p.closeIn()
		p.pr.CloseWithError(errBidiDone)
	})
	<-p.done
}

// copyBidi forwards the upstream event stream whole frames at a time, as
// copyStream does, and ends it with an exception frame when the caller's chain
// broke or the upstream failed mid-stream. It reports whether the client's
// stream must be aborted.
func (h *Handler) copyBidi(upCtx context.Context, w *responseWriter, body io.Reader, c *call, p *bidiPump) (abort bool) {
	f := newFrameForwarder(w, c.route.Op)
	bufp := h.bufs.Get().(*[]byte)
	defer h.bufs.Put(bufp)
	buf := *bufp
	var readErr error
	for readErr == nil {
		t := time.Now()
		n, err := body.Read(buf)
		c.upstream += time.Since(t)
		readErr = err
		if n == 0 {
			continue
		}
		f.write(buf[:n])
	}
	// The upstream is done: so is the session. Stop reading the caller.
	p.stop()
	c.usage, c.hasUsage = f.scanner.Usage()
	c.outputSeen = f.scanner.OutputSeen()
	if typ, _, ok := f.scanner.Exception(); ok {
		c.errType = typ
		c.upstreamFailed = true
	}
	var end *bedrock.Error
	switch be := p.failure.Load(); {
	case be != nil:
		end = be
	case cutByShutdown(upCtx):
		h.opts.Metrics.UpstreamFailure("shutdown")
		end = bedrock.Unavailable(shutdownMessage)
	case !errors.Is(readErr, io.EOF) || len(f.carry) > 0:
		c.upstreamFailed = true
		h.opts.Metrics.UpstreamFailure("reset")
		h.opts.Logger.Warn("upstream stream broke", "request_id", c.requestID, "error", readErr, "held_back_bytes", len(f.carry))
		if f.split.bad {
			return !w.clientGone
		}
		end = bedrock.Unavailable("The upstream stream ended unexpectedly.")
	default:
		return false
	}
	c.errType = end.Type
	if !w.clientGone {
		_, _ = w.Write(bedrock.EncodeExceptionFrame(end))
		w.Flush()
	}
	return false
}
