package proxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/bedrock-gateway/gateway/internal/bedrock"
)

// maxUsageBody bounds how much of a JSON response is kept to read its usage.
const maxUsageBody = 8 << 20

// forward sends the call upstream and streams the answer back.
func (h *Handler) forward(ctx context.Context, w *responseWriter, r *http.Request, c *call) (err error) {
	// The upstream call outlives the client: after a disconnect the gateway keeps
	// reading (bounded by DrainTimeout) to learn the exact usage.
	upCtx, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
	defer cancel(nil)
	var drain atomic.Pointer[time.Timer]
	stop := context.AfterFunc(r.Context(), func() {
		drain.Store(time.AfterFunc(h.opts.DrainTimeout, func() { cancel(errDrainTimeout) }))
	})
	stopCut := h.watchCut(cancel)
	defer func() {
		stop()
		stopCut()
		if t := drain.Load(); t != nil {
			t.Stop()
		}
	}()
	defer func() {
		if err != nil {
			h.release(ctx, c)
		}
	}()

	traceCtx, span := h.opts.Tracer.Start(ctx, "upstream")
	out, err := h.upstreamRequest(upCtx, traceCtx, r, c)
	if err != nil {
		span.End()
		return err
	}
	headerTimer := time.AfterFunc(h.opts.HeaderTimeout, func() { cancel(errHeaderTimeout) })
	t0 := time.Now()
	resp, err := h.opts.Transport.RoundTrip(out)
	headerTimer.Stop()
	c.upstream += time.Since(t0)
	if err != nil {
		span.End()
		return h.roundTripError(upCtx, w, r, c, err)
	}
	defer resp.Body.Close()
	copyResponseHeaders(w.Header(), resp.Header)
	if resp.StatusCode != http.StatusOK {
		// Upstream errors pass through unchanged; nothing is charged.
		h.release(ctx, c)
		w.WriteHeader(resp.StatusCode)
		h.copyPlain(w, resp, c, nil)
		span.End()
		c.errType = resp.Header.Get("X-Amzn-Errortype")
		return nil
	}
	if done, err := h.asyncResponse(ctx, w, resp, c); done || err != nil {
		span.End()
		return err
	}
	w.WriteHeader(http.StatusOK)
	abort := false
	if c.route.Op.Streaming() && isEventStream(resp.Header) {
		abort = h.copyStream(upCtx, w, resp, c)
	} else {
		var keep *bytes.Buffer
		if c.route.Op == bedrock.OpConverse {
			keep = &bytes.Buffer{}
		}
		h.copyPlain(w, resp, c, keep)
		switch c.route.Op {
		case bedrock.OpInvokeModel:
			c.usage, c.hasUsage = bedrock.UsageFromInvokeHeaders(resp.Header)
		case bedrock.OpConverse:
			c.usage, c.hasUsage = bedrock.UsageFromConverseBody(keep.Bytes())
		}
	}
	span.End()
	h.settle(ctx, c)
	if abort {
		// The stream broke inside a frame: the client must see a broken stream,
		// not a clean end.
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

func isEventStream(h http.Header) bool {
	return h.Get("Content-Type") == "application/vnd.amazon.eventstream"
}

// copyPlain copies a non-stream body, keeping a bounded copy in keep when set.
func (h *Handler) copyPlain(w *responseWriter, resp *http.Response, c *call, keep *bytes.Buffer) {
	bufp := h.bufs.Get().(*[]byte)
	defer h.bufs.Put(bufp)
	buf := *bufp
	var seen int64
	defer func() { c.outputSeen = bedrock.TokensForBytes(seen) }()
	for {
		t := time.Now()
		n, err := resp.Body.Read(buf)
		c.upstream += time.Since(t)
		seen += int64(n)
		if n > 0 {
			_, _ = w.Write(buf[:n])
			if keep != nil && keep.Len()+n <= maxUsageBody {
				keep.Write(buf[:n])
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				h.opts.Metrics.UpstreamFailure("reset")
				if keep != nil {
					keep.Reset() // an incomplete body has no trustworthy usage
				}
			}
			break
		}
	}
	// No explicit flush: the server sends the rest when the handler returns,
	// and a flush here costs a system call per request.
}

// copyStream forwards an event stream as it arrives, whole frames at a time,
// flushing after each read that completed a frame, while the scanner reads usage
// from the frames. Holding back only the unfinished tail of a frame costs the
// client nothing (it cannot decode half a frame) and keeps the client's stream on
// a frame boundary, so an upstream failure can always end it with a clean
// exception frame: Go's SDK would otherwise take a cut-off stream for a complete one.
// It reports whether the client's stream must be aborted (never, today: kept for
// a malformed upstream stream, which is passed through as it is).
func (h *Handler) copyStream(upCtx context.Context, w *responseWriter, resp *http.Response, c *call) (abort bool) {
	f := newFrameForwarder(w, c.route.Op)
	bufp := h.bufs.Get().(*[]byte)
	defer h.bufs.Put(bufp)
	buf := *bufp
	for {
		t := time.Now()
		n, err := resp.Body.Read(buf)
		c.upstream += time.Since(t)
		if n > 0 {
			f.write(buf[:n])
		}
		if err == nil {
			continue
		}
		if !errors.Is(err, io.EOF) || len(f.carry) > 0 {
			msg := "The upstream stream ended unexpectedly."
			switch {
			case cutByShutdown(upCtx):
				msg = shutdownMessage
				h.opts.Metrics.UpstreamFailure("shutdown")
			case errors.Is(context.Cause(upCtx), errDrainTimeout):
				h.opts.Metrics.UpstreamFailure("client_gone")
			default:
				c.upstreamFailed = true
				h.opts.Metrics.UpstreamFailure("reset")
				h.opts.Logger.Warn("upstream stream broke", "request_id", c.requestID, "error", err, "held_back_bytes", len(f.carry))
			}
			if !w.clientGone {
				if f.split.bad {
					abort = true
				} else {
					_, _ = w.Write(bedrock.EncodeExceptionFrame(bedrock.Unavailable(msg)))
					w.Flush()
				}
			}
			c.errType = "ServiceUnavailableException"
		}
		break
	}
	c.usage, c.hasUsage = f.scanner.Usage()
	c.outputSeen = f.scanner.OutputSeen()
	if p, ok := f.scanner.PartialUsage(); ok {
		c.partialInput = p.InputTokens
	}
	if typ, _, ok := f.scanner.Exception(); ok {
		c.upstreamFailed = true
		if c.errType == "" {
			c.errType = typ
		}
		h.opts.Metrics.UpstreamFailure("midstream_exception")
	}
	return abort
}
