package bedrock

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
)

// converseStream returns a ConverseStream response as Bedrock sends it, with
// n text deltas, ending with the metadata event carrying want.
func converseStream(n int, want Usage) (stream []byte, frames int) {
	var b bytes.Buffer
	add := func(typ, payload string) {
		b.Write(EncodeEventFrame(typ, []byte(payload)))
		frames++
	}
	add("messageStart", `{"role":"assistant"}`)
	for i := range n {
		add("contentBlockDelta", fmt.Sprintf(`{"contentBlockIndex":0,"delta":{"text":"token %d of a reply that says usage and metadata "}}`, i))
	}
	add("contentBlockStop", `{"contentBlockIndex":0}`)
	add("messageStop", `{"stopReason":"end_turn"}`)
	add("metadata", fmt.Sprintf(`{"usage":{"inputTokens":%d,"outputTokens":%d,"totalTokens":%d,"cacheReadInputTokens":%d,"cacheWriteInputTokens":%d},"metrics":{"latencyMs":812}}`,
		want.InputTokens, want.OutputTokens, want.Total(), want.CacheReadTokens, want.CacheWriteTokens))
	return b.Bytes(), frames
}

// invokeStream returns an Anthropic InvokeModelWithResponseStream response with
// n text deltas. The message_start and message_delta chunks report start and
// a delta output of startOut+n; the final chunk carries the metrics want.
func invokeStream(n int, start Usage, want Usage) (stream []byte, frames int) {
	// Text that mentions the markers must not confuse the scanner.
	return invokeStreamText(n, start, want, `word %d: \"message_start\" `)
}

// invokeStreamText is invokeStream with the delta text format (taking the index).
func invokeStreamText(n int, start Usage, want Usage, text string) (stream []byte, frames int) {
	var b bytes.Buffer
	add := func(native string) {
		b.Write(EncodeChunkFrame([]byte(native)))
		frames++
	}
	add(fmt.Sprintf(`{"type":"message_start","message":{"id":"msg_bdrk_01","type":"message","role":"assistant","model":"claude-3-5-haiku-20241022","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":%d,"cache_creation_input_tokens":%d,"cache_read_input_tokens":%d,"output_tokens":%d}}}`,
		start.InputTokens, start.CacheWriteTokens, start.CacheReadTokens, start.OutputTokens))
	add(`{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`)
	for i := range n {
		add(fmt.Sprintf(`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"`+text+`"}}`, i))
	}
	add(`{"type":"content_block_stop","index":0}`)
	add(fmt.Sprintf(`{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":%d}}`, start.OutputTokens+int64(n)))
	add(fmt.Sprintf(`{"type":"message_stop","amazon-bedrock-invocationMetrics":{"inputTokenCount":%d,"outputTokenCount":%d,"invocationLatency":4069,"firstByteLatency":1117,"cacheReadInputTokenCount":%d,"cacheWriteInputTokenCount":%d}}`,
		want.InputTokens, want.OutputTokens, want.CacheReadTokens, want.CacheWriteTokens))
	return b.Bytes(), frames
}

var (
	wantConverse   = Usage{InputTokens: 21, OutputTokens: 50, CacheReadTokens: 3, CacheWriteTokens: 4}
	anthropicStart = Usage{InputTokens: 7, OutputTokens: 1, CacheReadTokens: 14486, CacheWriteTokens: 2238}
	wantInvoke     = Usage{InputTokens: 7, OutputTokens: 126, CacheReadTokens: 14486, CacheWriteTokens: 2238}
)

type streamCase struct {
	name    string
	op      Operation
	stream  []byte
	frames  int
	usage   Usage
	partial Usage // PartialUsage when the final frame is missing
	hasPart bool
}

func streamCases() []streamCase {
	cs, cn := converseStream(12, wantConverse)
	is, in := invokeStream(12, anthropicStart, wantInvoke)
	partial := anthropicStart
	partial.OutputTokens = anthropicStart.OutputTokens + 12
	return []streamCase{
		{"ConverseStream", OpConverseStream, cs, cn, wantConverse, Usage{}, false},
		{"InvokeModelWithResponseStream", OpInvokeModelWithResponseStream, is, in, wantInvoke, partial, true},
	}
}

// checkComplete asserts a scanner saw the whole of c.stream.
func checkComplete(t *testing.T, s *StreamScanner, c streamCase) {
	t.Helper()
	if err := s.Err(); err != nil {
		t.Fatalf("Err() = %v", err)
	}
	if s.Partial() {
		t.Errorf("Partial() = true after a whole stream")
	}
	if s.Events() != c.frames {
		t.Errorf("Events() = %d, want %d", s.Events(), c.frames)
	}
	if u, ok := s.Usage(); !ok || u != c.usage {
		t.Errorf("Usage() = %+v, %v; want %+v", u, ok, c.usage)
	}
	if u, ok := s.PartialUsage(); !ok || u != c.usage {
		t.Errorf("PartialUsage() = %+v, %v; want the authoritative %+v", u, ok, c.usage)
	}
	if typ, msg, ok := s.Exception(); ok {
		t.Errorf("Exception() = %q, %q", typ, msg)
	}
}

func write(t *testing.T, s *StreamScanner, p []byte) {
	t.Helper()
	if n, err := s.Write(p); n != len(p) || err != nil {
		t.Fatalf("Write(%d bytes) = %d, %v", len(p), n, err)
	}
}

func TestStreamScannerWholeStream(t *testing.T) {
	t.Parallel()
	for _, c := range streamCases() {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s := NewStreamScanner(c.op)
			write(t, s, c.stream)
			checkComplete(t, s, c)
		})
	}
}

func TestStreamScannerEverySplit(t *testing.T) {
	t.Parallel()
	for _, c := range streamCases() {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s := NewStreamScanner(c.op)
			for i := 0; i <= len(c.stream); i++ {
				s.Reset(c.op)
				write(t, s, c.stream[:i])
				write(t, s, c.stream[i:])
				checkComplete(t, s, c)
			}
			// Three pieces: every first cut with a second cut a frame's length on.
			for i := 0; i+100 <= len(c.stream); i += 7 {
				s.Reset(c.op)
				write(t, s, c.stream[:i])
				write(t, s, c.stream[i:i+100])
				write(t, s, c.stream[i+100:])
				checkComplete(t, s, c)
			}
		})
	}
}

func TestStreamScannerOneByteAtATime(t *testing.T) {
	t.Parallel()
	for _, c := range streamCases() {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s := NewStreamScanner(c.op)
			boundaries := map[int]bool{}
			for off := 0; off < len(c.stream); off += int(binary.BigEndian.Uint32(c.stream[off:])) {
				boundaries[off] = true
			}
			for i := range c.stream {
				write(t, s, c.stream[i:i+1])
				// Something is pending exactly when the next byte is inside a frame.
				if s.Partial() == boundaries[i+1] && i+1 < len(c.stream) {
					t.Fatalf("after byte %d: Partial() = %v", i, s.Partial())
				}
			}
			write(t, s, nil)
			checkComplete(t, s, c)
		})
	}
}

func TestStreamScannerTruncated(t *testing.T) {
	t.Parallel()
	for _, c := range streamCases() {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			for _, cut := range []int{1, 5, 12, 13} {
				s := NewStreamScanner(c.op)
				write(t, s, c.stream[:len(c.stream)-cut])
				if !s.Partial() {
					t.Errorf("cut %d: Partial() = false", cut)
				}
				if s.Err() != nil {
					t.Errorf("cut %d: Err() = %v", cut, s.Err())
				}
				if u, ok := s.Usage(); ok {
					t.Errorf("cut %d: Usage() = %+v, true; want not ok", cut, u)
				}
				if u, ok := s.PartialUsage(); ok != c.hasPart || u != c.partial {
					t.Errorf("cut %d: PartialUsage() = %+v, %v; want %+v, %v", cut, u, ok, c.partial, c.hasPart)
				}
				if s.Events() != c.frames-1 {
					t.Errorf("cut %d: Events() = %d, want %d", cut, s.Events(), c.frames-1)
				}
			}
		})
	}
}

func TestStreamScannerCorruption(t *testing.T) {
	t.Parallel()
	cs, _ := converseStream(3, wantConverse)
	first := int(binary.BigEndian.Uint32(cs))
	second := int(binary.BigEndian.Uint32(cs[first:]))

	flip := func(off int) []byte {
		b := bytes.Clone(cs)
		b[off] ^= 0x40
		return b
	}
	withPrelude := func(total, headers uint32) []byte {
		b := bytes.Clone(cs[:first])
		var p [12]byte
		binary.BigEndian.PutUint32(p[0:], total)
		binary.BigEndian.PutUint32(p[4:], headers)
		binary.BigEndian.PutUint32(p[8:], crc32.ChecksumIEEE(p[:8]))
		return append(append(b, p[:]...), make([]byte, 64)...)
	}
	tests := []struct {
		name   string
		stream []byte
		want   error
	}{
		{"prelude CRC", flip(first + 9), ErrPreludeCRC},
		{"length field itself", flip(first + 2), ErrPreludeCRC},
		{"message CRC", flip(first + second - 1), ErrMessageCRC},
		{"payload byte", flip(first + second - 8), ErrMessageCRC},
		{"header byte", flip(first + 14), ErrMessageCRC},
		{"huge length", withPrelude(frameMaxLen+1, 0), ErrFrameLength},
		{"max uint32 length", withPrelude(0xffffffff, 0), ErrFrameLength},
		{"too short", withPrelude(15, 0), ErrFrameLength},
		{"zero length", withPrelude(0, 0), ErrFrameLength},
		{"headers longer than frame", withPrelude(100, 85), ErrFrameHeader},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			for _, oneByte := range []bool{false, true} {
				s := NewStreamScanner(OpConverseStream)
				if oneByte {
					for i := range tt.stream {
						write(t, s, tt.stream[i:i+1])
					}
				} else {
					write(t, s, tt.stream)
				}
				if err := s.Err(); !errors.Is(err, tt.want) {
					t.Fatalf("Err() = %v, want %v", err, tt.want)
				}
				if !strings.Contains(s.Err().Error(), fmt.Sprintf("at byte %d", first)) {
					t.Errorf("error %q does not name offset %d", s.Err(), first)
				}
				if s.Events() != 1 {
					t.Errorf("Events() = %d, want 1 (the frame before the damage)", s.Events())
				}
				// Decoding has stopped: a valid stream written after is ignored.
				write(t, s, cs)
				if s.Events() != 1 || s.Partial() {
					t.Errorf("after the error: Events() = %d, Partial() = %v", s.Events(), s.Partial())
				}
				if _, ok := s.Usage(); ok {
					t.Errorf("Usage() ok after a framing error")
				}
			}
		})
	}
}

// rawFrame builds a frame with arbitrary header bytes and correct CRCs.
func rawFrame(headers, payload []byte) []byte {
	total := 16 + len(headers) + len(payload)
	b := make([]byte, 12, total)
	binary.BigEndian.PutUint32(b[0:], uint32(total))
	binary.BigEndian.PutUint32(b[4:], uint32(len(headers)))
	binary.BigEndian.PutUint32(b[8:], crc32.ChecksumIEEE(b[:8]))
	b = append(append(b, headers...), payload...)
	return binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(b))
}

func TestStreamScannerBadHeaders(t *testing.T) {
	t.Parallel()
	tests := map[string][]byte{
		"unknown type":         []byte("\x01a\x0a"),
		"name past end":        []byte("\x09:abc"),
		"missing type":         []byte("\x02ab"),
		"string past end":      []byte("\x01a\x07\x00\x09abc"),
		"string length cut":    []byte("\x01a\x07\x00"),
		"int32 cut":            []byte("\x01a\x04\x00\x00"),
		"uuid cut":             []byte("\x01a\x09" + strings.Repeat("x", 15)),
		"trailing name length": []byte("\x01a\x00\x05"),
	}
	for name, hdr := range tests {
		s := NewStreamScanner(OpConverseStream)
		write(t, s, rawFrame(hdr, []byte("{}")))
		if !errors.Is(s.Err(), ErrFrameHeader) {
			t.Errorf("%s: Err() = %v, want ErrFrameHeader", name, s.Err())
		}
		if s.Events() != 0 {
			t.Errorf("%s: Events() = %d", name, s.Events())
		}
	}
}

func TestStreamScannerAllHeaderTypes(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	err := eventstream.NewEncoder().Encode(&b, eventstream.Message{
		Headers: eventstream.Headers{
			{Name: "t", Value: eventstream.BoolValue(true)},
			{Name: "f", Value: eventstream.BoolValue(false)},
			{Name: "i8", Value: eventstream.Int8Value(-3)},
			{Name: "i16", Value: eventstream.Int16Value(300)},
			{Name: "i32", Value: eventstream.Int32Value(70000)},
			{Name: "i64", Value: eventstream.Int64Value(1 << 40)},
			{Name: "bytes", Value: eventstream.BytesValue([]byte(":message-type"))},
			{Name: "ts", Value: eventstream.TimestampValue(time.UnixMilli(1700000000000))},
			{Name: "uuid", Value: eventstream.UUIDValue{1, 2, 3}},
			{Name: ":event-type", Value: eventstream.StringValue("metadata")},
			{Name: ":message-type", Value: eventstream.StringValue("event")},
		},
		Payload: []byte(`{"usage":{"inputTokens":5,"outputTokens":6,"totalTokens":11},"metrics":{"latencyMs":1}}`),
	})
	if err != nil {
		t.Fatal(err)
	}
	s := NewStreamScanner(OpConverseStream)
	write(t, s, b.Bytes())
	if s.Err() != nil || s.Events() != 1 {
		t.Fatalf("Err() = %v, Events() = %d", s.Err(), s.Events())
	}
	if u, ok := s.Usage(); !ok || u != (Usage{InputTokens: 5, OutputTokens: 6}) {
		t.Errorf("Usage() = %+v, %v", u, ok)
	}
}

func TestStreamScannerExceptions(t *testing.T) {
	t.Parallel()
	head, _ := converseStream(2, wantConverse)
	exc := EncodeExceptionFrame(Throttling("Too many tokens, please wait before trying again.", 0))
	var errFrame bytes.Buffer
	if err := eventstream.NewEncoder().Encode(&errFrame, eventstream.Message{Headers: eventstream.Headers{
		{Name: ":message-type", Value: eventstream.StringValue("error")},
		{Name: ":error-code", Value: eventstream.StringValue("InternalFailure")},
		{Name: ":error-message", Value: eventstream.StringValue("An internal error occurred.")},
	}}); err != nil {
		t.Fatal(err)
	}
	escaped := rawFrame(
		[]byte("\x0f:exception-type\x07\x00\x19modelStreamErrorException\x0d:message-type\x07\x00\x09exception"),
		[]byte(`{"message":"bad \"chunk\" \u00e9"}`))

	tests := []struct {
		name     string
		stream   []byte
		op       Operation
		typ, msg string
		usage    bool
	}{
		{"exception after usage", append(bytes.Clone(head), exc...), OpConverseStream, "throttlingException", "Too many tokens, please wait before trying again.", true},
		{"exception alone", exc, OpInvokeModelWithResponseStream, "throttlingException", "Too many tokens, please wait before trying again.", false},
		{"error frame", errFrame.Bytes(), OpConverseStream, "InternalFailure", "An internal error occurred.", false},
		{"escaped message", escaped, OpInvokeModelWithResponseStream, "modelStreamErrorException", `bad "chunk" é`, false},
		{"first one wins", append(bytes.Clone(exc), errFrame.Bytes()...), OpConverseStream, "throttlingException", "Too many tokens, please wait before trying again.", false},
	}
	for _, tt := range tests {
		s := NewStreamScanner(tt.op)
		write(t, s, tt.stream)
		typ, msg, ok := s.Exception()
		if !ok || typ != tt.typ || msg != tt.msg {
			t.Errorf("%s: Exception() = %q, %q, %v; want %q, %q", tt.name, typ, msg, ok, tt.typ, tt.msg)
		}
		if _, ok := s.Usage(); ok != tt.usage {
			t.Errorf("%s: Usage() ok = %v", tt.name, ok)
		}
		if s.Err() != nil {
			t.Errorf("%s: Err() = %v", tt.name, s.Err())
		}
	}
}

func TestStreamScannerChunkVariants(t *testing.T) {
	t.Parallel()
	metrics := `{"type":"message_stop","amazon-bedrock-invocationMetrics":{"inputTokenCount":3,"outputTokenCount":4,"invocationLatency":1,"firstByteLatency":1}}`
	b64 := base64.StdEncoding.EncodeToString([]byte(metrics))
	llama := `{"generation":"","prompt_token_count":null,"generation_token_count":9,"stop_reason":"stop","amazon-bedrock-invocationMetrics":{"inputTokenCount":11,"outputTokenCount":9,"invocationLatency":100,"firstByteLatency":50}}`
	tests := []struct {
		name    string
		op      Operation
		frame   []byte
		want    Usage
		ok      bool
		partial bool
	}{
		{"padding field", OpInvokeModelWithResponseStream, EncodeEventFrame("chunk", []byte(`{"bytes":"`+b64+`","p":"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123"}`)), Usage{InputTokens: 3, OutputTokens: 4}, true, false},
		{"padding first and spaces", OpInvokeModelWithResponseStream, EncodeEventFrame("chunk", []byte(`{ "p" : "abc" , "bytes" : "`+b64+`" }`)), Usage{InputTokens: 3, OutputTokens: 4}, true, false},
		{"escaped slash", OpInvokeModelWithResponseStream, EncodeEventFrame("chunk", []byte(`{"bytes":"`+strings.ReplaceAll(base64.StdEncoding.EncodeToString([]byte(metrics+"\xff\xff")), "/", `\/`)+`"}`)), Usage{}, false, false},
		{"llama metrics", OpInvokeModelWithResponseStream, EncodeChunkFrame([]byte(llama)), Usage{InputTokens: 11, OutputTokens: 9}, true, false},
		{"bidirectional chunk", OpInvokeModelWithBidirectionalStream, EncodeChunkFrame([]byte(llama)), Usage{InputTokens: 11, OutputTokens: 9}, true, false},
		{"metrics on ConverseStream ignored", OpConverseStream, EncodeChunkFrame([]byte(llama)), Usage{}, false, false},
		{"metadata on invoke ignored", OpInvokeModelWithResponseStream, EncodeEventFrame("metadata", []byte(`{"usage":{"inputTokens":1,"outputTokens":2}}`)), Usage{}, false, false},
		{"metrics missing output", OpInvokeModelWithResponseStream, EncodeChunkFrame([]byte(`{"amazon-bedrock-invocationMetrics":{"inputTokenCount":3}}`)), Usage{}, false, false},
		{"metrics negative", OpInvokeModelWithResponseStream, EncodeChunkFrame([]byte(`{"amazon-bedrock-invocationMetrics":{"inputTokenCount":-3,"outputTokenCount":1}}`)), Usage{}, false, false},
		{"metrics string", OpInvokeModelWithResponseStream, EncodeChunkFrame([]byte(`{"amazon-bedrock-invocationMetrics":{"inputTokenCount":"3","outputTokenCount":1}}`)), Usage{}, false, false},
		{"not base64", OpInvokeModelWithResponseStream, EncodeEventFrame("chunk", []byte(`{"bytes":"!!!"}`)), Usage{}, false, false},
		{"not JSON payload", OpInvokeModelWithResponseStream, EncodeEventFrame("chunk", []byte(`bytes`)), Usage{}, false, false},
		{"native not JSON", OpInvokeModelWithResponseStream, EncodeChunkFrame([]byte(`"amazon-bedrock-invocationMetrics" "message_start"`)), Usage{}, false, false},
		{"message_start in text only", OpInvokeModelWithResponseStream, EncodeChunkFrame([]byte(`{"type":"content_block_delta","delta":{"text":"\"message_start\" usage"}}`)), Usage{}, false, false},
		{"converse metadata without usage", OpConverseStream, EncodeEventFrame("metadata", []byte(`{"metrics":{"latencyMs":1}}`)), Usage{}, false, false},
		{"converse metadata null cache", OpConverseStream, EncodeEventFrame("metadata", []byte(`{"usage":{"inputTokens":1,"outputTokens":2,"cacheReadInputTokens":null},"metrics":{}}`)), Usage{InputTokens: 1, OutputTokens: 2}, true, false},
		{"message_start usage", OpInvokeModelWithResponseStream, EncodeChunkFrame([]byte(`{"type":"message_start","message":{"usage":{"input_tokens":4,"output_tokens":1}}}`)), Usage{InputTokens: 4, OutputTokens: 1}, false, true},
		{"message_delta alone", OpInvokeModelWithResponseStream, EncodeChunkFrame([]byte(`{"type":"message_delta","usage":{"output_tokens":30,"input_tokens":12}}`)), Usage{InputTokens: 12, OutputTokens: 30}, false, true},
	}
	for _, tt := range tests {
		s := NewStreamScanner(tt.op)
		write(t, s, tt.frame)
		if s.Err() != nil || s.Events() != 1 {
			t.Fatalf("%s: Err() = %v, Events() = %d", tt.name, s.Err(), s.Events())
		}
		u, ok := s.Usage()
		if ok != tt.ok || ok && u != tt.want {
			t.Errorf("%s: Usage() = %+v, %v; want %+v, %v", tt.name, u, ok, tt.want, tt.ok)
		}
		pu, pok := s.PartialUsage()
		if pok != (tt.ok || tt.partial) || pok && pu != tt.want {
			t.Errorf("%s: PartialUsage() = %+v, %v; want %+v", tt.name, pu, pok, tt.want)
		}
	}
}

func TestStreamScannerEscapedBase64(t *testing.T) {
	t.Parallel()
	// Find a metrics chunk whose base64 has a '/', then escape it as JSON may.
	for pad := 0; pad < 64; pad++ {
		native := fmt.Sprintf(`{"x":"%s","amazon-bedrock-invocationMetrics":{"inputTokenCount":3,"outputTokenCount":4}}`, strings.Repeat("?", pad))
		enc := base64.StdEncoding.EncodeToString([]byte(native))
		if !strings.Contains(enc, "/") {
			continue
		}
		s := NewStreamScanner(OpInvokeModelWithResponseStream)
		write(t, s, EncodeEventFrame("chunk", []byte(`{"bytes":"`+strings.ReplaceAll(enc, "/", `\/`)+`"}`)))
		if u, ok := s.Usage(); !ok || u != (Usage{InputTokens: 3, OutputTokens: 4}) {
			t.Fatalf("Usage() = %+v, %v", u, ok)
		}
		return
	}
	t.Fatal("no padding produced a '/' in base64")
}

func TestStreamScannerResetDropsState(t *testing.T) {
	t.Parallel()
	c := streamCases()[1]
	s := NewStreamScanner(c.op)
	write(t, s, c.stream[:len(c.stream)-3])
	write(t, s, EncodeExceptionFrame(Internal("x"))) // lands inside the pending frame
	s.Reset(OpConverseStream)
	if s.Partial() || s.Events() != 0 || s.Err() != nil {
		t.Fatalf("after Reset: Partial %v Events %d Err %v", s.Partial(), s.Events(), s.Err())
	}
	if _, ok := s.PartialUsage(); ok {
		t.Fatal("PartialUsage survived Reset")
	}
	if _, _, ok := s.Exception(); ok {
		t.Fatal("Exception survived Reset")
	}
	cc := streamCases()[0]
	write(t, s, cc.stream)
	checkComplete(t, s, cc)

	// A huge pending buffer is not kept for the pool.
	s.Reset(OpInvokeModelWithResponseStream)
	big := EncodeChunkFrame(make([]byte, 200<<10))
	write(t, s, big[:len(big)-1])
	s.Reset(OpInvokeModelWithResponseStream)
	if cap(s.pending) > maxRetainedBuf {
		t.Errorf("Reset kept a %d-byte buffer", cap(s.pending))
	}
}

func TestStreamScannerAllocations(t *testing.T) {
	for _, c := range streamCases() {
		s := NewStreamScanner(c.op)
		write(t, s, c.stream) // warm the buffers
		frames := splitFrames(c.stream)
		allocs := testing.AllocsPerRun(20, func() {
			s.Reset(c.op)
			for _, f := range frames {
				// Each frame arrives in two reads, so the pending path runs too.
				_, _ = s.Write(f[:len(f)/2])
				_, _ = s.Write(f[len(f)/2:])
			}
		})
		if allocs != 0 {
			t.Errorf("%s: %v allocations per stream, want 0", c.name, allocs)
		}
		checkComplete(t, s, c)
	}
}

func splitFrames(stream []byte) [][]byte {
	var frames [][]byte
	for len(stream) >= 4 {
		n := int(binary.BigEndian.Uint32(stream))
		frames = append(frames, stream[:n])
		stream = stream[n:]
	}
	return frames
}

func FuzzStreamScanner(f *testing.F) {
	// Short seeds: the fuzzer minimizes every new input, which costs time
	// proportional to the square of its length.
	cs, _ := converseStream(1, wantConverse)
	is, _ := invokeStreamText(1, anthropicStart, wantInvoke, "hi %d")
	f.Add(cs, uint16(len(cs)/3), uint8(OpConverseStream))
	f.Add(is, uint16(len(is)/3), uint8(OpInvokeModelWithResponseStream))
	f.Add(EncodeExceptionFrame(Throttling("slow down", 0)), uint16(5), uint8(OpConverseStream))
	f.Add(rawFrame([]byte("\x01a\x07\x00\x01b"), []byte(`{"bytes":"e30="}`)), uint16(0), uint8(OpInvokeModelWithResponseStream))
	f.Add(EncodeChunkFrame([]byte(`{"type":"message_start","message":{"usage":{"input_tokens":4}}}`)), uint16(17), uint8(OpInvokeModelWithResponseStream))
	f.Fuzz(func(t *testing.T, data []byte, split uint16, op uint8) {
		s := NewStreamScanner(Operation(op % uint8(opCount)))
		cut := int(split) % (len(data) + 1)
		for _, p := range [][]byte{data[:cut], data[cut:]} {
			if n, err := s.Write(p); n != len(p) || err != nil {
				t.Fatalf("Write = %d, %v", n, err)
			}
		}
		if s.Err() != nil && s.Partial() {
			t.Fatal("Partial() after an error")
		}
		u, ok := s.Usage()
		if ok && (u.InputTokens < 0 || u.OutputTokens < 0 || u.CacheReadTokens < 0 || u.CacheWriteTokens < 0) {
			t.Fatalf("negative usage %+v", u)
		}
		_, _ = s.PartialUsage()
		_, _, _ = s.Exception()
		if s.Events() < 0 {
			t.Fatal("negative events")
		}
	})
}

// FuzzFrameScanner fuzzes what lies behind the CRCs (header blocks and
// payloads), which random bytes almost never reach.
func FuzzFrameScanner(f *testing.F) {
	hdr := func(typ string) []byte { return decodeFrameHeaders(EncodeEventFrame(typ, nil)) }
	f.Add(hdr("chunk"), []byte(`{"bytes":"eyJ0eXBlIjoibWVzc2FnZV9zdGFydCIsIm1lc3NhZ2UiOnsidXNhZ2UiOnsiaW5wdXRfdG9rZW5zIjo0fX19"}`), uint8(OpInvokeModelWithResponseStream))
	f.Add(hdr("metadata"), []byte(`{"usage":{"inputTokens":1,"outputTokens":2}}`), uint8(OpConverseStream))
	f.Add(decodeFrameHeaders(EncodeExceptionFrame(Internal("x"))), []byte(`{"message":"boom \u00e9"}`), uint8(OpConverseStream))
	f.Add(decodeFrameHeaders(EncodeChunkFrame([]byte(`{"amazon-bedrock-invocationMetrics":{"inputTokenCount":1,"outputTokenCount":2}}`))),
		[]byte(`{"bytes":"eyJhbWF6b24tYmVkcm9jay1pbnZvY2F0aW9uTWV0cmljcyI6eyJpbnB1dFRva2VuQ291bnQiOjEsIm91dHB1dFRva2VuQ291bnQiOjJ9fQ=="}`), uint8(OpInvokeModelWithResponseStream))
	f.Fuzz(func(t *testing.T, headers, payload []byte, op uint8) {
		if len(headers)+len(payload)+16 > frameMaxLen {
			return
		}
		s := NewStreamScanner(Operation(op % uint8(opCount)))
		frame := rawFrame(headers, payload)
		if n, err := s.Write(frame); n != len(frame) || err != nil {
			t.Fatalf("Write = %d, %v", n, err)
		}
		if err := s.Err(); err != nil && !errors.Is(err, ErrFrameHeader) {
			t.Fatalf("Err() = %v for a frame with valid CRCs", err)
		}
		if (s.Err() == nil) != (s.Events() == 1) || s.Partial() {
			t.Fatalf("Err %v, Events %d, Partial %v", s.Err(), s.Events(), s.Partial())
		}
		if u, ok := s.PartialUsage(); ok && (u.InputTokens < 0 || u.OutputTokens < 0) {
			t.Fatalf("negative usage %+v", u)
		}
		_, _, _ = s.Exception()
	})
}

// decodeFrameHeaders returns the header block of an encoded frame.
func decodeFrameHeaders(frame []byte) []byte {
	n := binary.BigEndian.Uint32(frame[4:8])
	return frame[12 : 12+n]
}

func benchStream(b *testing.B, op Operation, stream []byte) {
	frames := splitFrames(stream)
	s := NewStreamScanner(op)
	b.ReportAllocs()
	b.SetBytes(int64(len(stream)))
	for b.Loop() {
		s.Reset(op)
		for _, f := range frames {
			_, _ = s.Write(f)
		}
	}
	if _, ok := s.Usage(); !ok {
		b.Fatal("no usage")
	}
}

func BenchmarkStreamScanner(b *testing.B) {
	cs, _ := converseStream(50, wantConverse)
	is, _ := invokeStreamText(50, anthropicStart, wantInvoke, "token %d of a reply, ")
	b.Run("ConverseStream", func(b *testing.B) { benchStream(b, OpConverseStream, cs) })
	b.Run("InvokeModelWithResponseStream", func(b *testing.B) { benchStream(b, OpInvokeModelWithResponseStream, is) })
	b.Run("InvokeModelWithResponseStream/whole", func(b *testing.B) {
		s := NewStreamScanner(OpInvokeModelWithResponseStream)
		b.ReportAllocs()
		b.SetBytes(int64(len(is)))
		for b.Loop() {
			s.Reset(OpInvokeModelWithResponseStream)
			_, _ = s.Write(is)
		}
	})
}
