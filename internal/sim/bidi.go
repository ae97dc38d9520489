package sim

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"

	"github.com/bedrock-gateway/gateway/internal/bedrock"
)

// InvokeModelWithBidirectionalStream (HTTP/2 only): the request body is a chain
// of signed envelopes (Bedrock's bidirectional event stream), each wrapping one `chunk` event
// {"bytes":"<base64 native JSON>"}; an empty envelope ends the input. The
// simulated model is an echo: each input chunk's text (the strings under
// "text", "inputText", "prompt", and Nova Sonic's textInput "content") is
// answered at once with one output chunk repeating it, as
// {"event":{"textOutput":{"role":"ASSISTANT","content":"..."}}}; input chunks
// without text get no answer. When the input ends, a last chunk
// {"event":{"completionEnd":{...}},"amazon-bedrock-invocationMetrics":{...}}
// reports the words received as input tokens and the words echoed as output
// tokens; that usage is what counts in Totals. Observed.Body holds the native
// input chunks, one per line.
//
// Faults: the error faults answer before any header; "midstream" sends an
// internalServerException frame after the first answer, "reset" aborts there.

// bidiDecoder unwraps envelopes without checking their signatures (no
// VerifyStream configured).
func bidiDecoder() func(io.Reader) ([]byte, bool, error) {
	dec := eventstream.NewDecoder()
	var buf []byte
	return func(r io.Reader) ([]byte, bool, error) {
		msg, err := dec.Decode(r, buf[:0])
		if err != nil {
			return nil, false, err
		}
		buf = msg.Payload[:0]
		return msg.Payload, len(msg.Payload) == 0, nil
	}
}

// openBidi authenticates the request and returns the envelope reader.
func (c *call) openBidi() (func(io.Reader) ([]byte, bool, error), *bedrock.Error) {
	opts := &c.s.opts
	asBedrock := func(err error) *bedrock.Error {
		if be, ok := errors.AsType[*bedrock.Error](err); ok {
			return be
		}
		return bedrock.BadSignature("The request signature we calculated does not match the signature you provided.")
	}
	switch {
	case opts.VerifyStream != nil:
		next, err := opts.VerifyStream(c.r)
		if err != nil {
			c.s.log.Debug("sim: stream signature rejected", "err", err)
			return nil, asBedrock(err)
		}
		return next, nil
	case opts.Verify != nil:
		if err := opts.Verify(c.r, nil); err != nil {
			c.s.log.Debug("sim: signature rejected", "err", err)
			return nil, asBedrock(err)
		}
	}
	return bidiDecoder(), nil
}

// bidi answers one bidirectional session.
func (c *call) bidi() {
	s := c.s
	s.mu.Lock()
	c.rec.Op, c.rec.ModelID = c.route.Op, c.route.ModelID
	s.mu.Unlock()
	if c.r.ProtoMajor < 2 {
		// The open-ended body will not be read: close rather than wait for it.
		c.w.Header().Set("Connection", "close")
		c.fail(bedrock.Validation("InvokeModelWithBidirectionalStream requires HTTP/2."))
		return
	}
	next, be := c.openBidi()
	if be != nil {
		c.fail(be)
		return
	}
	ctl, be := s.controls(c.r)
	if be != nil {
		c.fail(be)
		return
	}
	c.ctl = ctl
	ctx := c.r.Context()
	if !sleepCtx(ctx, ctl.latency) {
		return
	}
	if ctl.fault != "" {
		s.mu.Lock()
		c.rec.Fault = ctl.fault
		s.mu.Unlock()
		if ctl.fault != FaultMidstream && ctl.fault != FaultReset {
			c.failFault(ctl.fault)
			return
		}
	}

	h := c.w.Header()
	h.Set("Content-Type", "application/vnd.amazon.eventstream")
	h.Set("Date", time.Now().UTC().Format(http.TimeFormat))
	c.setStatus(http.StatusOK)
	c.w.WriteHeader(http.StatusOK)
	out := newBidiSender(c)
	if !out.flush() {
		return
	}

	body := &bedrock.ReadRecorder{R: c.r.Body}
	var native bytes.Buffer
	var usage bedrock.Usage
	for {
		payload, end, err := next(body)
		if err != nil {
			// Nothing is reported: the session did not end normally.
			c.setBody(native.Bytes())
			var be *bedrock.Error
			switch {
			case ctx.Err() != nil:
				return // the client went away
			case body.Err == nil:
				// Bytes arrived but were no valid envelope (bad signature or framing).
				var ok bool
				if be, ok = errors.AsType[*bedrock.Error](err); !ok {
					be = bedrock.Validation("The input stream is malformed: " + err.Error())
				}
			case errors.Is(body.Err, io.EOF):
				be = bedrock.Validation("The input stream ended without its closing event.")
			default:
				return // the body broke off: the client is gone
			}
			out.send(exceptionMessage(be))
			return
		}
		if end {
			break
		}
		text, chunk, be := bidiInput(payload)
		if be != nil {
			c.setBody(native.Bytes())
			out.send(exceptionMessage(be))
			return
		}
		native.Write(chunk)
		native.WriteByte('\n')
		words := strings.Fields(text)
		usage.InputTokens += int64(len(words))
		if len(words) == 0 {
			continue
		}
		usage.OutputTokens += int64(len(words))
		if !out.send(chunkEvent(bidiText(strings.Join(words, " ")))) {
			c.setBody(native.Bytes())
			return
		}
		switch ctl.fault {
		case FaultMidstream:
			c.setBody(native.Bytes())
			out.send(exceptionMessage(midstreamError()))
			return
		case FaultReset:
			c.setBody(native.Bytes())
			c.abort()
		}
	}
	c.setBody(native.Bytes())
	final := bidiEnd{Metrics: &metrics{
		InputTokenCount: usage.InputTokens, OutputTokenCount: usage.OutputTokens,
		InvocationLatency: c.elapsedMs(), FirstByteLatency: out.firstByte.Milliseconds(),
	}}
	final.Event.CompletionEnd.StopReason = "END_TURN"
	if out.send(chunkEvent(final)) {
		s.report(c.rec, usage)
	}
}

// bidiSender writes output events, honouring delays and OnEvent like stream.
type bidiSender struct {
	c         *call
	rc        *http.ResponseController
	enc       *eventstream.Encoder
	k         int
	firstByte time.Duration
}

func newBidiSender(c *call) *bidiSender {
	return &bidiSender{c: c, rc: http.NewResponseController(c.w), enc: eventstream.NewEncoder()}
}

func (o *bidiSender) flush() bool {
	err := o.rc.Flush()
	return err == nil || errors.Is(err, http.ErrNotSupported)
}

// send writes event k; it reports whether it reached the connection.
func (o *bidiSender) send(m eventstream.Message) bool {
	ctx := o.c.r.Context()
	delay := o.c.ctl.eventDelay
	if o.k == 0 {
		delay = o.c.s.opts.FirstEvent
	}
	if !sleepCtx(ctx, delay) {
		return false
	}
	if f := o.c.s.opts.OnEvent; f != nil {
		f(o.c.r, o.k)
		if ctx.Err() != nil {
			return false
		}
	}
	if o.k == 0 {
		o.firstByte = time.Since(o.c.start)
	}
	o.k++
	return o.enc.Encode(o.c.w, m) == nil && o.flush()
}

// bidiOutput is Nova Sonic's textOutput event.
type bidiOutput struct {
	Event struct {
		TextOutput struct {
			Role    string `json:"role"`
			Content string `json:"content"`
		} `json:"textOutput"`
	} `json:"event"`
}

func bidiText(s string) bidiOutput {
	var o bidiOutput
	o.Event.TextOutput.Role = "ASSISTANT"
	o.Event.TextOutput.Content = s
	return o
}

// bidiEnd is the last chunk: completionEnd plus the invocation metrics.
type bidiEnd struct {
	Event struct {
		CompletionEnd struct {
			StopReason string `json:"stopReason"`
		} `json:"completionEnd"`
	} `json:"event"`
	Metrics *metrics `json:"amazon-bedrock-invocationMetrics"`
}

// bidiInput decodes one inner input event (a `chunk` event whose payload is
// {"bytes":"<base64>"}) and returns the text of its native chunk and the chunk.
func bidiInput(payload []byte) (text string, chunk []byte, be *bedrock.Error) {
	msg, err := eventstream.NewDecoder().Decode(bytes.NewReader(payload), nil)
	if err != nil {
		return "", nil, bedrock.Validation("The input event could not be decoded.")
	}
	if mt, _ := msg.Headers.Get(":message-type").(eventstream.StringValue); mt != "event" {
		return "", nil, bedrock.Validation("The input stream carries a message that is not an event.")
	}
	if et, _ := msg.Headers.Get(":event-type").(eventstream.StringValue); et != "chunk" {
		return "", nil, bedrock.Validation("The input event is not a chunk.")
	}
	var part struct {
		Bytes []byte `json:"bytes"`
	}
	if json.Unmarshal(msg.Payload, &part) != nil {
		return "", nil, bedrock.Validation("The input chunk is not valid JSON with base64 bytes.")
	}
	var doc any
	if json.Unmarshal(part.Bytes, &doc) != nil {
		return "", part.Bytes, nil // opaque (audio, say): no text
	}
	var b strings.Builder
	collectText(&b, "", doc)
	return b.String(), part.Bytes, nil
}

// collectText appends the prompt text found anywhere in a decoded chunk.
func collectText(b *strings.Builder, parent string, v any) {
	switch v := v.(type) {
	case map[string]any:
		for _, k := range slices.Sorted(maps.Keys(v)) {
			x := v[k]
			s, isString := x.(string)
			switch {
			case isString && (k == "text" || k == "inputText" || k == "prompt" || k == "content" && parent == "textInput"):
				b.WriteString(s)
				b.WriteByte(' ')
			case !isString:
				collectText(b, k, x)
			}
		}
	case []any:
		for _, x := range v {
			collectText(b, parent, x)
		}
	}
}
