package proxy

import (
	"context"
	"errors"
)

// errShuttingDown cancels upstream calls still running when the gateway's
// shutdown deadline passes.
var errShuttingDown = errors.New("gateway shutting down")

// shutdownMessage is what a caller cut off by a shutdown is told: the SDKs
// retry ServiceUnavailableException, and another replica will answer.
const shutdownMessage = "The gateway is shutting down; retry the request."

// CutStreams ends every call still in flight: each upstream call is cancelled,
// a stream's client gets a serviceUnavailableException frame (never a silent
// end, which the SDKs read as a complete answer), a call still waiting for
// response headers gets ServiceUnavailableException, and each reservation is
// settled with what the call consumed so far. It returns at once; the handlers
// finish on their own goroutines (Inflight reaches zero). Calls arriving
// afterwards are cut as soon as they reach the upstream.
func (h *Handler) CutStreams() { h.cutAll(errShuttingDown) }

// Cut reports how many calls CutStreams ended.
func (h *Handler) Cut() int64 { return h.cutCount.Load() }

// watchCut ties an upstream call's context to CutStreams; the returned
// function stops watching.
func (h *Handler) watchCut(cancel context.CancelCauseFunc) func() bool {
	return context.AfterFunc(h.cut, func() {
		h.cutCount.Add(1)
		cancel(context.Cause(h.cut))
	})
}

// cutByShutdown reports whether the upstream call was ended by CutStreams.
func cutByShutdown(upCtx context.Context) bool {
	return errors.Is(context.Cause(upCtx), errShuttingDown)
}
