package proxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/bedrock-gateway/gateway/internal/bedrock"
)

// maxUsageBody bounds how much of a JSON response is kept to read its usage.
const maxUsageBody = 8 << 20

// brokenStreamMessage ends a client's stream the upstream broke off.
const brokenStreamMessage = "The upstream stream ended unexpectedly."

func isEventStream(h http.Header) bool {
	return h.Get("Content-Type") == eventStreamType
}

// sink takes the upstream's answer as it is read: the frame forwarder
// (event streams, frames.go) when set, otherwise the plain writer. A struct
// rather than an interface so that neither escapes to the heap.
type sink struct {
	frames *frameForwarder
	plain  plainWriter
}

func (s *sink) write(p []byte) {
	if s.frames != nil {
		s.frames.write(p)
		return
	}
	s.plain.write(p)
}

// readUpstream reads body to its end into s, one pooled buffer at a time,
// adding the time spent waiting on the upstream to c.upstream. It returns
// the error that ended the body: io.EOF when it is complete.
func (h *Handler) readUpstream(body io.Reader, c *call, s *sink) error {
	pool := &h.bufs
	if s.frames != nil {
		pool = &h.frameBuf
	}
	bufp := pool.Get().(*[]byte)
	defer pool.Put(bufp)
	buf := *bufp
	for {
		t := time.Now()
		n, err := body.Read(buf)
		c.upstream += time.Since(t)
		if n > 0 {
			s.write(buf[:n])
		}
		if err != nil {
			return err
		}
	}
}

// plainWriter writes a non-stream body through, counting its bytes and
// keeping a bounded copy in keep when set.
type plainWriter struct {
	w    *responseWriter
	keep *bytes.Buffer
	seen int64
}

func (s *plainWriter) write(p []byte) {
	s.seen += int64(len(p))
	_, _ = s.w.Write(p)
	if s.keep != nil && s.keep.Len()+len(p) <= maxUsageBody {
		s.keep.Write(p)
	}
}

// copyPlain copies a non-stream body, keeping a bounded copy in keep when set.
func (h *Handler) copyPlain(w *responseWriter, body io.Reader, c *call, keep *bytes.Buffer) {
	s := sink{plain: plainWriter{w: w, keep: keep}}
	err := h.readUpstream(body, c, &s)
	c.outputSeen = bedrock.TokensForBytes(s.plain.seen)
	if !errors.Is(err, io.EOF) {
		h.opts.Metrics.UpstreamFailure("reset")
		if keep != nil {
			keep.Reset() // an incomplete body has no trustworthy usage
		}
	}
	// No explicit flush: the server sends the rest when the handler returns,
	// and a flush here costs a system call per request.
}

// copyStream forwards an event stream as it arrives, whole frames at a time,
// flushing after each read that completed a frame, while the scanner reads usage
// from the frames. Holding back only the unfinished tail of a frame costs the
// client nothing (it cannot decode half a frame) and keeps the client's stream on
// a frame boundary, so a failure can always end it with a clean exception
// frame: Go's SDK would otherwise take a cut-off stream for a complete one.
//
// ended, when set, is called once the upstream body has ended: it ends the
// caller's side of a bidirectional session and returns the error that broke
// the caller's input, if it broke, which then ends the client's stream.
// copyStream reports whether the client's stream must be aborted instead (a
// malformed upstream stream, passed through as it is, cannot take a frame).
func (h *Handler) copyStream(upCtx context.Context, w *responseWriter, body io.Reader, c *call, ended func() *bedrock.Error) (abort bool) {
	f := newFrameForwarder(w, c.route.Op)
	readErr := h.readUpstream(body, c, &sink{frames: f})
	var inputErr *bedrock.Error
	if ended != nil {
		inputErr = ended()
	}
	c.usage, c.hasUsage = f.scanner.Usage()
	c.outputSeen = f.scanner.OutputSeen()
	if p, ok := f.scanner.PartialUsage(); ok {
		c.partialInput = p.InputTokens
	}
	if typ, _, ok := f.scanner.Exception(); ok {
		c.upstreamFailed = true
		c.errType = typ
		h.opts.Metrics.UpstreamFailure("midstream_exception")
	}
	var end *bedrock.Error
	switch {
	case inputErr != nil:
		end = inputErr
	case errors.Is(readErr, io.EOF) && len(f.carry) == 0:
		return false // complete
	case cutByShutdown(upCtx):
		h.opts.Metrics.UpstreamFailure("shutdown")
		end = bedrock.Unavailable(shutdownMessage)
	case errors.Is(context.Cause(upCtx), errDrainTimeout):
		h.opts.Metrics.UpstreamFailure("client_gone")
		end = bedrock.Unavailable(brokenStreamMessage)
	default:
		c.upstreamFailed = true
		h.opts.Metrics.UpstreamFailure("reset")
		h.opts.Logger.Warn("upstream stream broke", "request_id", c.requestID, "error", readErr, "held_back_bytes", len(f.carry))
		end = bedrock.Unavailable(brokenStreamMessage)
	}
	c.errType = end.Type
	if w.clientGone {
		return false
	}
	if f.split.bad {
		return true
	}
	_, _ = w.Write(bedrock.EncodeExceptionFrame(end))
	w.Flush()
	return false
}
