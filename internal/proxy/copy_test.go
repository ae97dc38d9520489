package proxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"
	"testing/iotest"
	"time"

	"github.com/bedrock-gateway/gateway/internal/bedrock"
)

// TestCopyStreamEnds: every event stream (the response streams and the
// bidirectional stream alike) ends the same way for the same cause: a clean
// end passes through; a broken one ends with an exception frame saying why,
// or is aborted when it broke inside a malformed frame; the failure is
// counted by its reason and marked upstream-failed only when the upstream
// is to blame.
func TestCopyStreamEnds(t *testing.T) {
	t.Parallel()
	event := bedrock.EncodeEventFrame("contentBlockDelta", []byte(`{"contentBlockIndex":0,"delta":{"text":"hello "}}`))
	modelErr := bedrock.EncodeExceptionFrame(bedrock.Internal("The model failed."))
	broken := errors.New("connection reset by peer")
	badSig := bedrock.BadSignature("Invalid signed event stream envelope.")
	tests := []struct {
		name      string
		body      io.Reader
		cause     error          // the upstream call's cancel cause, nil when none
		input     *bedrock.Error // what ended() reports (the caller's chain broke)
		wantEnd   *bedrock.Error // the exception frame appended, nil for none
		passed    []byte         // what else the client gets after the first event
		wantAbort bool
		wantType  string
		wantFail  bool   // marked upstream-failed
		reason    string // the failure counted, "" for none
	}{
		{name: "complete", body: bytes.NewReader(event)},
		{
			name: "complete despite shutdown", body: bytes.NewReader(event), cause: errShuttingDown,
		},
		{
			name: "broken inside a frame", body: bytes.NewReader(append(append([]byte{}, event...), event[:7]...)),
			wantEnd: bedrock.Unavailable(brokenStreamMessage), wantType: "ServiceUnavailableException", wantFail: true, reason: "reset",
		},
		{
			name: "connection broke", body: io.MultiReader(bytes.NewReader(event), iotest.ErrReader(broken)),
			wantEnd: bedrock.Unavailable(brokenStreamMessage), wantType: "ServiceUnavailableException", wantFail: true, reason: "reset",
		},
		{
			name: "client gone past the drain timeout", body: io.MultiReader(bytes.NewReader(event), iotest.ErrReader(context.Canceled)), cause: errDrainTimeout,
			wantEnd: bedrock.Unavailable(brokenStreamMessage), wantType: "ServiceUnavailableException", reason: "client_gone",
		},
		{
			name: "cut by shutdown", body: io.MultiReader(bytes.NewReader(event), iotest.ErrReader(context.Canceled)), cause: errShuttingDown,
			wantEnd: bedrock.Unavailable(shutdownMessage), wantType: "ServiceUnavailableException", reason: "shutdown",
		},
		{
			name: "caller's chain broke", body: bytes.NewReader(event), input: badSig,
			wantEnd: badSig, wantType: badSig.Type,
		},
		{
			name: "model exception", body: bytes.NewReader(append(append([]byte{}, event...), modelErr...)),
			passed: modelErr, wantType: "internalServerException", wantFail: true, reason: "midstream_exception",
		},
		{
			name: "malformed frame", body: io.MultiReader(bytes.NewReader([]byte{0, 0, 0, 3, 1, 2}), iotest.ErrReader(broken)),
			wantAbort: true, wantType: "ServiceUnavailableException", wantFail: true, reason: "reset",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := accessHandler(t, time.Now(), slog.New(slog.DiscardHandler))
			rec := httptest.NewRecorder()
			w := newResponseWriter(rec)
			c := &call{route: bedrock.Route{Op: bedrock.OpConverseStream}}
			upCtx, cancel := context.WithCancelCause(t.Context())
			defer cancel(nil)
			if tt.cause != nil {
				cancel(tt.cause)
			}
			var ended func() *bedrock.Error
			if tt.input != nil {
				ended = func() *bedrock.Error { return tt.input }
			}

			abort := h.copyStream(upCtx, w, tt.body, c, ended)
			if abort != tt.wantAbort || c.errType != tt.wantType || c.upstreamFailed != tt.wantFail {
				t.Fatalf("abort %v, error type %q, upstream failed %v; want %v, %q, %v", abort, c.errType, c.upstreamFailed, tt.wantAbort, tt.wantType, tt.wantFail)
			}
			got := rec.Body.Bytes()
			if !bytes.HasPrefix(got, event) && !tt.wantAbort {
				t.Fatalf("the first event was not forwarded: %q", got)
			}
			want := tt.passed
			if tt.wantEnd != nil {
				want = bedrock.EncodeExceptionFrame(tt.wantEnd)
			}
			if tail := got[min(len(event), len(got)):]; !tt.wantAbort && !bytes.Equal(tail, want) {
				t.Fatalf("stream ends with %q, want %q", tail, want)
			}
			for _, reason := range []string{"reset", "client_gone", "shutdown", "midstream_exception"} {
				want := 0.0
				if reason == tt.reason {
					want = 1
				}
				if n := upstreamFailures(t, h.opts.Metrics, reason); n != want {
					t.Errorf("%s failures %v, want %v", reason, n, want)
				}
			}
		})
	}
}
