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

	"github.com/bedrock-gateway/gateway/internal/authn"
	"github.com/bedrock-gateway/gateway/internal/bedrock"
)

// InvokeModelWithBidirectionalStream is full duplex over
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
func (h *Handler) serveBidi(ctx context.Context, w *responseWriter, r *http.Request, c *call, res *authn.Result) error {
	return h.roundTrip(ctx, w, r, c, &bidiSession{res: res})
}

// bidiSession is the bidirectional stream's half of the round trip: a pump
// feeds the upstream body with the caller's events, re-signed, while the
// answer streams back. Its stop and close do nothing on a nil session (any
// other call).
type bidiSession struct {
	res            *authn.Result
	pump           *bidiPump // nil until open started it
	closeTransport func()
}

// open builds the upstream request, starts the pump and returns the
// transport of the session.
func (b *bidiSession) open(h *Handler, upCtx, traceCtx context.Context, cancel context.CancelCauseFunc, r *http.Request, c *call) (*http.Request, http.RoundTripper, error) {
	cv, err := h.opts.Verifier.NewChunkVerifier(b.res)
	if err != nil {
		return nil, nil, err
	}
	transport, closeTransport := h.bidiTransport()
	b.closeTransport = closeTransport
	pr, pw := io.Pipe()
	out, signer, err := h.upstreamRequest(upCtx, traceCtx, r, c, pr, authn.StreamingEvents)
	if err != nil {
		return nil, nil, err
	}
	in := r.Body
	b.pump = &bidiPump{
		in: &bedrock.ReadRecorder{R: in}, closeIn: func() { _ = in.Close() },
		cv: cv, signer: signer, pr: pr, pw: pw, cancel: cancel, done: make(chan struct{}),
	}
	go b.pump.run()
	return out, transport, nil
}

// stop ends the pump and waits for it; it returns the error that broke the
// caller's chain, if it broke.
func (b *bidiSession) stop() *bedrock.Error {
	if b == nil || b.pump == nil {
		return nil
	}
	b.pump.stop()
	return b.pump.failure.Load()
}

// close closes the session's own upstream connection, if it has one.
func (b *bidiSession) close() {
	if b != nil && b.closeTransport != nil {
		b.closeTransport()
	}
}

// respond forwards the upstream event stream whole frames at a time; it ends
// with an exception frame when the caller's chain broke. A session whose
// usage is unknown is charged its estimate, unless the upstream never saw an
// event.
func (b *bidiSession) respond(h *Handler, upCtx context.Context, w *responseWriter, resp *http.Response, c *call) (charge, abort bool) {
	w.WriteHeader(http.StatusOK)
	w.Flush() // the client may wait for the headers before it sends
	// Once the upstream is done, so is the session: stop reading the caller.
	abort = h.copyStream(upCtx, w, resp.Body, c, b.stop)
	return c.hasUsage || b.pump.forwarded.Load() > 0, abort
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
