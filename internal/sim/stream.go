package sim

import (
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"

	"github.com/bedrock-gateway/gateway/internal/bedrock"
)

// eventMessage is an event frame with headers in the order Bedrock sends them.
func eventMessage(eventType string, payload []byte) eventstream.Message {
	return eventstream.Message{
		Headers: eventstream.Headers{
			{Name: ":event-type", Value: eventstream.StringValue(eventType)},
			{Name: ":content-type", Value: eventstream.StringValue("application/json")},
			{Name: ":message-type", Value: eventstream.StringValue("event")},
		},
		Payload: payload,
	}
}

// exceptionMessage is a modeled exception frame; the type is the lowerCamel member
// name, which every SDK recognises.
func exceptionMessage(e *bedrock.Error) eventstream.Message {
	return eventstream.Message{
		Headers: eventstream.Headers{
			{Name: ":exception-type", Value: eventstream.StringValue(e.StreamMemberName())},
			{Name: ":content-type", Value: eventstream.StringValue("application/json")},
			{Name: ":message-type", Value: eventstream.StringValue("exception")},
		},
		Payload: bedrock.ErrorBody(e.Message),
	}
}

func jsonEvent(eventType string, v any) eventstream.Message {
	b, _ := json.Marshal(v)
	return eventMessage(eventType, b)
}

// chunkEvent wraps a native model chunk as InvokeModelWithResponseStream's `chunk`
// event: {"bytes":"<base64>"}.
func chunkEvent(native any) eventstream.Message {
	raw, _ := json.Marshal(native)
	return jsonEvent("chunk", struct {
		Bytes []byte `json:"bytes"`
	}{raw})
}

// streamClock measures a stream's latencies for the metrics Bedrock reports.
type streamClock struct {
	start     time.Time
	firstByte time.Duration
}

func (t *streamClock) latencyMs() int64   { return time.Since(t.start).Milliseconds() }
func (t *streamClock) firstByteMs() int64 { return t.firstByte.Milliseconds() }

// eventSource produces a stream's events lazily, so long outputs cost no memory.
type eventSource struct {
	n        int // number of events
	usageIdx int // the event that carries the final usage
	event    func(k int) eventstream.Message
}

// stream sends src as an event stream, honouring delays, OnEvent, faults and the
// client going away. contentType is X-Amzn-Bedrock-Content-Type ("" for none).
func (c *call) stream(g *generation, clock *streamClock, src eventSource, contentType string) {
	h := c.w.Header()
	h.Set("Content-Type", "application/vnd.amazon.eventstream")
	if contentType != "" {
		h.Set("X-Amzn-Bedrock-Content-Type", contentType)
	}
	h.Set("Date", time.Now().UTC().Format(http.TimeFormat))
	c.setStatus(http.StatusOK)
	c.w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(c.w)
	// flush pushes each event out at once; a writer that cannot flush still works.
	flush := func() bool {
		err := rc.Flush()
		return err == nil || errors.Is(err, http.ErrNotSupported)
	}
	if !flush() {
		return
	}

	ctx := c.r.Context()
	enc := eventstream.NewEncoder()
	limit := src.n
	fault := c.ctl.fault
	if fault == FaultMidstream || fault == FaultReset {
		// Fail before the final usage reaches the client: it then saw no usage.
		limit = min(3, src.usageIdx)
	}
	k := 0
	send := func(m eventstream.Message) bool {
		delay := c.ctl.eventDelay
		if k == 0 {
			delay = c.s.opts.FirstEvent
		}
		if !sleepCtx(ctx, delay) {
			return false
		}
		if c.s.opts.OnEvent != nil {
			c.s.opts.OnEvent(c.r, k)
			if ctx.Err() != nil {
				return false
			}
		}
		if k == 0 {
			clock.firstByte = time.Since(clock.start)
		}
		k++
		return enc.Encode(c.w, m) == nil && flush()
	}
	for i := range limit {
		if !send(src.event(i)) {
			return
		}
		if i == src.usageIdx {
			c.s.report(c.rec, g.usage())
		}
	}
	switch fault {
	case FaultMidstream:
		send(exceptionMessage(midstreamError()))
	case FaultReset:
		c.abort()
	}
}

func (c *call) invokeModelStream() {
	g, be := c.plan(false)
	if be != nil {
		c.fail(be)
		return
	}
	if g.fam == famEmbed {
		c.fail(bedrock.Validation("The model is unsupported for streaming."))
		return
	}
	clock := &streamClock{start: c.start}
	var src eventSource
	switch g.fam {
	case famAnthropic:
		src = anthropicStream(g, clock)
	case famNova:
		src = novaStream(g, clock)
	default:
		src = wordChunkStream(g, clock)
	}
	c.stream(g, clock, src, "application/json")
}

func (c *call) converseStream() {
	g, be := c.conversePlan()
	if be != nil {
		c.fail(be)
		return
	}
	clock := &streamClock{start: c.start}
	c.stream(g, clock, converseStream(g, clock), "")
}

type blockIndex struct {
	ContentBlockIndex int `json:"contentBlockIndex"`
}

type textDelta struct {
	Delta struct {
		Text string `json:"text"`
	} `json:"delta"`
	ContentBlockIndex int `json:"contentBlockIndex"`
}

func newTextDelta(text string) textDelta {
	var d textDelta
	d.Delta.Text = text
	return d
}

type stopReason struct {
	StopReason string `json:"stopReason"`
}

type role struct {
	Role string `json:"role"`
}

// converseStream: messageStart, contentBlockDelta per word, contentBlockStop,
// messageStop, metadata. Bedrock sends no contentBlockStart for text.
func converseStream(g *generation, clock *streamClock) eventSource {
	out := int(g.output)
	return eventSource{
		n:        out + 4,
		usageIdx: out + 3,
		event: func(k int) eventstream.Message {
			switch {
			case k == 0:
				return jsonEvent("messageStart", role{"assistant"})
			case k <= out:
				return jsonEvent("contentBlockDelta", newTextDelta(word(k-1)))
			case k == out+1:
				return jsonEvent("contentBlockStop", blockIndex{0})
			case k == out+2:
				return jsonEvent("messageStop", stopReason{g.stopReason()})
			}
			return jsonEvent("metadata", struct {
				Usage   converseUsage  `json:"usage"`
				Metrics latencyMetrics `json:"metrics"`
			}{g.converseUsage(), latencyMetrics{clock.latencyMs()}})
		},
	}
}

// anthropicStream: message_start, content_block_start, content_block_delta per word,
// content_block_stop, message_delta (final usage), message_stop (metrics).
func anthropicStream(g *generation, clock *streamClock) eventSource {
	out := int(g.output)
	type typed struct {
		Type  string `json:"type"`
		Index *int   `json:"index,omitempty"`
	}
	zero := 0
	return eventSource{
		n:        out + 5,
		usageIdx: out + 3,
		event: func(k int) eventstream.Message {
			switch {
			case k == 0:
				return chunkEvent(struct {
					Type    string           `json:"type"`
					Message anthropicMessage `json:"message"`
				}{"message_start", g.anthropicMessage([]textBlock{}, nil, min(g.output, 1))})
			case k == 1:
				return chunkEvent(struct {
					typed
					ContentBlock textBlock `json:"content_block"`
				}{typed{"content_block_start", &zero}, textBlock{Type: "text"}})
			case k < out+2:
				return chunkEvent(struct {
					typed
					Delta textBlock `json:"delta"`
				}{typed{"content_block_delta", &zero}, textBlock{Type: "text_delta", Text: word(k - 2)}})
			case k == out+2:
				return chunkEvent(typed{"content_block_stop", &zero})
			case k == out+3:
				type delta struct {
					StopReason   string  `json:"stop_reason"`
					StopSequence *string `json:"stop_sequence"`
				}
				type usage struct {
					OutputTokens int64 `json:"output_tokens"`
				}
				return chunkEvent(struct {
					typed
					Delta delta `json:"delta"`
					Usage usage `json:"usage"`
				}{typed{Type: "message_delta"}, delta{StopReason: g.stopReason()}, usage{g.output}})
			}
			return chunkEvent(struct {
				typed
				Metrics *metrics `json:"amazon-bedrock-invocationMetrics"`
			}{typed{Type: "message_stop"}, g.metrics(clock.latencyMs(), clock.firstByteMs())})
		},
	}
}

// novaStream: Nova's native chunks mirror ConverseStream's events.
func novaStream(g *generation, clock *streamClock) eventSource {
	out := int(g.output)
	return eventSource{
		n:        out + 4,
		usageIdx: out + 3,
		event: func(k int) eventstream.Message {
			switch {
			case k == 0:
				return chunkEvent(struct {
					MessageStart role `json:"messageStart"`
				}{role{"assistant"}})
			case k <= out:
				return chunkEvent(struct {
					ContentBlockDelta textDelta `json:"contentBlockDelta"`
				}{newTextDelta(word(k - 1))})
			case k == out+1:
				return chunkEvent(struct {
					ContentBlockStop blockIndex `json:"contentBlockStop"`
				}{blockIndex{0}})
			case k == out+2:
				return chunkEvent(struct {
					MessageStop stopReason `json:"messageStop"`
				}{stopReason{g.stopReason()}})
			}
			type metadata struct {
				Usage   novaUsage `json:"usage"`
				Metrics struct{}  `json:"metrics"`
				Trace   struct{}  `json:"trace"`
			}
			return chunkEvent(struct {
				Metadata metadata `json:"metadata"`
				Metrics  *metrics `json:"amazon-bedrock-invocationMetrics"`
			}{metadata{Usage: g.novaUsage()}, g.metrics(clock.latencyMs(), clock.firstByteMs())})
		},
	}
}

// wordChunkStream: one native chunk per word (Titan, Llama, Mistral and others), the
// last one carrying the stop reason and metrics; an empty output still sends one.
func wordChunkStream(g *generation, clock *streamClock) eventSource {
	n := max(int(g.output), 1)
	return eventSource{
		n:        n,
		usageIdx: n - 1,
		event: func(k int) eventstream.Message {
			text := ""
			if k < int(g.output) {
				text = word(k)
			}
			count := min(int64(k+1), g.output)
			last := k == n-1
			var stop *string
			var m *metrics
			if last {
				s := g.stopReason()
				stop = &s
				m = g.metrics(clock.latencyMs(), clock.firstByteMs())
			}
			switch g.fam {
			case famTitanText:
				var input *int64
				if k == 0 {
					input = &g.input
				}
				return chunkEvent(struct {
					OutputText                string   `json:"outputText"`
					Index                     int      `json:"index"`
					TotalOutputTextTokenCount int64    `json:"totalOutputTextTokenCount"`
					CompletionReason          *string  `json:"completionReason"`
					InputTextTokenCount       *int64   `json:"inputTextTokenCount,omitempty"`
					Metrics                   *metrics `json:"amazon-bedrock-invocationMetrics,omitempty"`
				}{text, 0, count, stop, input, m})
			case famLlama:
				var input *int64
				if k == 0 {
					input = &g.input
				}
				return chunkEvent(struct {
					Generation           string   `json:"generation"`
					PromptTokenCount     *int64   `json:"prompt_token_count"`
					GenerationTokenCount int64    `json:"generation_token_count"`
					StopReason           *string  `json:"stop_reason"`
					Metrics              *metrics `json:"amazon-bedrock-invocationMetrics,omitempty"`
				}{text, input, count, stop, m})
			}
			return chunkEvent(genericOutputs{Outputs: []genericOutput{{Text: text, StopReason: stop}}, Metrics: m})
		},
	}
}
