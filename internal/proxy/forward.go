package proxy

import (
	"bytes"
	"context"
	"encoding/hex"
	"io"
	"net/http"

	"github.com/bedrock-gateway/gateway/internal/bedrock"
)

// forward sends the call upstream with the body read up front and streams
// the answer back.
func (h *Handler) forward(ctx context.Context, w *responseWriter, r *http.Request, c *call) error {
	return h.roundTrip(ctx, w, r, c, nil)
}

// plainRequest builds the signed upstream request of every call but the
// bidirectional stream: the body the caller signed (or the gateway rebuilt)
// goes up whole, with the hash computed once.
func (h *Handler) plainRequest(upCtx, traceCtx context.Context, r *http.Request, c *call) (*http.Request, error) {
	var body io.Reader = http.NoBody
	switch {
	case len(c.body) > 0:
		body = bytes.NewReader(c.body)
	case r.Method == http.MethodGet:
		body = nil
	}
	var hashHex [64]byte
	hex.Encode(hashHex[:], c.bodyHash[:])
	out, _, err := h.upstreamRequest(upCtx, traceCtx, r, c, body, string(hashHex[:]))
	return out, err
}

// respond writes a 200 answer through, reading its usage on the way: from
// the event stream's frames, InvokeModel's headers or Converse's body.
// charge says the call is settled (otherwise released), abort that the
// client's stream must be cut off.
func (h *Handler) respond(ctx, upCtx context.Context, w *responseWriter, resp *http.Response, c *call) (charge, abort bool, err error) {
	if done, err := h.asyncResponse(ctx, w, resp, c); done || err != nil {
		return false, false, err // nothing was reserved for these
	}
	w.WriteHeader(http.StatusOK)
	if c.route.Op.Streaming() && isEventStream(resp.Header) {
		return true, h.copyStream(upCtx, w, resp.Body, c, nil), nil
	}
	var keep *bytes.Buffer
	if c.route.Op == bedrock.OpConverse {
		keep = &bytes.Buffer{}
	}
	h.copyPlain(w, resp.Body, c, keep)
	switch c.route.Op {
	case bedrock.OpInvokeModel:
		c.usage, c.hasUsage = bedrock.UsageFromInvokeHeaders(resp.Header)
	case bedrock.OpConverse:
		c.usage, c.hasUsage = bedrock.UsageFromConverseBody(keep.Bytes())
	}
	return true, false, nil
}
