package proxy

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/bedrock-gateway/gateway/internal/bedrock"
)

var (
	errHeaderTimeout = errors.New("upstream response header timeout")
	errDrainTimeout  = errors.New("drain timeout after client disconnect")
)

// roundTrip sends one call upstream and streams the answer back. The upstream
// call outlives the client: after a disconnect the gateway keeps reading,
// bounded by DrainTimeout, to learn the exact usage; CutStreams ends it at the
// shutdown deadline; HeaderTimeout bounds the wait for the response headers.
// An upstream error answer (any non-200) passes through unchanged and costs
// nothing, and so does a call that returns an error (not written yet): its
// reservation is released.
//
// What differs between the two shapes of call is in two places: bidi is the
// bidirectional stream's session (bidi.go), whose caller's events are pumped
// upstream as they arrive; nil for every other call, whose body was read up
// front (forward.go). (Concrete calls rather than an interface: the call
// state stays off the heap.)
func (h *Handler) roundTrip(ctx context.Context, w *responseWriter, r *http.Request, c *call, bidi *bidiSession) (err error) {
	defer func() {
		if err != nil {
			h.release(ctx, c)
		}
	}()
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

	traceCtx, span := h.startSpan(ctx, "upstream")
	defer span.End()
	defer bidi.close() // last: after the pump and the response body are done
	var out *http.Request
	transport := h.opts.Transport
	if bidi != nil {
		out, transport, err = bidi.open(h, upCtx, traceCtx, cancel, r, c)
	} else {
		out, err = h.plainRequest(upCtx, traceCtx, r, c)
	}
	if err != nil {
		return err
	}
	defer bidi.stop()

	headerTimer := time.AfterFunc(h.opts.HeaderTimeout, func() { cancel(errHeaderTimeout) })
	t0 := time.Now()
	resp, err := transport.RoundTrip(out)
	headerTimer.Stop()
	c.upstream += time.Since(t0)
	if err != nil {
		if be := bidi.stop(); be != nil {
			return be // the caller's input broke before the upstream answered
		}
		return h.roundTripError(upCtx, w, r, c, err)
	}
	defer resp.Body.Close()
	c.upstreamStatus = resp.StatusCode
	copyResponseHeaders(w.Header(), resp.Header)
	if resp.StatusCode != http.StatusOK {
		// Upstream errors pass through unchanged; nothing is charged.
		bidi.stop()
		h.release(ctx, c)
		w.WriteHeader(resp.StatusCode)
		h.copyPlain(w, resp.Body, c, nil)
		c.errType = resp.Header.Get("X-Amzn-Errortype")
		return nil
	}
	var charge, abort bool
	if bidi != nil {
		charge, abort = bidi.respond(h, upCtx, w, resp, c)
	} else {
		charge, abort, err = h.respond(ctx, upCtx, w, resp, c)
	}
	span.End() // before settling (a second End is a no-op)
	if err != nil {
		return err
	}
	if charge {
		h.settle(ctx, c) // the estimate when the usage is unknown
	} else {
		h.release(ctx, c)
	}
	if abort {
		// The stream broke inside a frame: the client must see a broken
		// stream, not a clean end.
		panic(http.ErrAbortHandler)
	}
	return nil
}

// roundTripError maps a failed upstream round trip (no response) to the
// client's error: a header timeout, the client gone, or the upstream unreachable.
func (h *Handler) roundTripError(upCtx context.Context, w *responseWriter, r *http.Request, c *call, err error) error {
	switch cause := context.Cause(upCtx); {
	case errors.Is(cause, errShuttingDown):
		h.opts.Metrics.UpstreamFailure("shutdown")
		return bedrock.Unavailable(shutdownMessage)
	case errors.Is(cause, errHeaderTimeout):
		h.opts.Metrics.UpstreamFailure("timeout")
		return bedrock.ModelTimeout("The model did not respond in time.")
	case errors.Is(cause, errDrainTimeout) || r.Context().Err() != nil:
		h.opts.Metrics.UpstreamFailure("client_gone")
		w.clientGone = true
		return bedrock.Unavailable("The client went away.")
	default:
		h.opts.Metrics.UpstreamFailure("unreachable")
		h.opts.Logger.Warn("upstream unreachable", "request_id", c.requestID, "error", err)
		return bedrock.Unavailable("The upstream model endpoint is unreachable. Try again.")
	}
}
