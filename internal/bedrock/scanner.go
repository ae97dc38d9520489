package bedrock

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// Event-stream framing limits (the AWS event stream encoding Bedrock uses).
const (
	framePreludeLen = 12       // total length, headers length, prelude CRC
	frameMinLen     = 16       // prelude plus message CRC
	frameMaxLen     = 16 << 20 // the largest message the AWS SDKs accept
)

// Framing errors a StreamScanner records (wrapped with the frame's offset).
var (
	ErrFrameLength = errors.New("event stream frame length out of range")
	ErrPreludeCRC  = errors.New("event stream prelude checksum mismatch")
	ErrMessageCRC  = errors.New("event stream message checksum mismatch")
	ErrFrameHeader = errors.New("malformed event stream frame headers")
)

// Buffers larger than this are dropped on Reset rather than kept in a pool.
const maxRetainedBuf = 64 << 10

// StreamScanner observes an event stream as the proxy forwards it and picks out
// what the gateway needs: usage, a mid-stream exception, framing damage. It is
// an io.Writer meant to sit beside the copy loop (io.MultiWriter or an explicit
// Write of each chunk forwarded); it never fails the copy. It keeps no copy of
// the stream: complete frames are decoded in place from the written slice and
// only an incomplete trailing frame is buffered until the rest arrives. Every
// frame's CRCs are checked.
//
// A StreamScanner is not safe for concurrent use. Use NewStreamScanner; Reset
// makes one reusable (for a sync.Pool).
type StreamScanner struct {
	op      Operation
	pending []byte // an incomplete trailing frame
	decoded []byte // reusable base64 decode buffer for chunk payloads
	offset  int64  // stream offset of the first byte not yet part of a frame
	events  int
	err     error

	usage      Usage // authoritative usage (metrics or metadata)
	hasUsage   bool
	partial    Usage // best-effort usage from Anthropic chunks
	hasPartial bool
	textBytes  int64 // generated text seen (outputseen.go)

	excType, excMsg string
	hasExc          bool
}

// NewStreamScanner returns a scanner for the response stream of op.
func NewStreamScanner(op Operation) *StreamScanner {
	s := &StreamScanner{}
	s.Reset(op)
	return s
}

// Reset readies s for a new stream of op, keeping modest buffers for reuse.
func (s *StreamScanner) Reset(op Operation) {
	pending, decoded := s.pending[:0], s.decoded[:0]
	if cap(pending) > maxRetainedBuf {
		pending = nil
	}
	if cap(decoded) > maxRetainedBuf {
		decoded = nil
	}
	*s = StreamScanner{op: op, pending: pending, decoded: decoded}
}

// Write observes p. It always returns len(p), nil: framing problems are
// recorded (see Err) and stop the decoding, never the caller's copy.
func (s *StreamScanner) Write(p []byte) (int, error) {
	n := len(p)
	if s.err != nil {
		return n, nil
	}
	if len(s.pending) > 0 {
		p = s.completePending(p)
	}
	for len(p) > 0 && s.err == nil {
		if len(p) < framePreludeLen {
			s.pending = append(s.pending, p...)
			break
		}
		total, ok := s.checkPrelude(p)
		if !ok {
			break
		}
		if len(p) < total {
			s.pending = append(s.pending, p...)
			break
		}
		s.frame(p[:total])
		p = p[total:]
	}
	return n, nil
}

// completePending moves bytes from p into the buffered frame, decodes the frame
// once complete, and returns what is left of p.
func (s *StreamScanner) completePending(p []byte) []byte {
	if len(s.pending) < framePreludeLen {
		k := min(framePreludeLen-len(s.pending), len(p))
		s.pending = append(s.pending, p[:k]...)
		p = p[k:]
		if len(s.pending) < framePreludeLen {
			return p
		}
		if _, ok := s.checkPrelude(s.pending); !ok {
			return nil
		}
	}
	total := int(binary.BigEndian.Uint32(s.pending))
	k := min(total-len(s.pending), len(p))
	s.pending = append(s.pending, p[:k]...)
	p = p[k:]
	if len(s.pending) == total {
		s.frame(s.pending)
		s.pending = s.pending[:0]
	}
	return p
}

// checkPrelude validates the 12-byte prelude at the start of b and returns the
// frame's total length.
func (s *StreamScanner) checkPrelude(b []byte) (int, bool) {
	total := binary.BigEndian.Uint32(b[0:4])
	headers := binary.BigEndian.Uint32(b[4:8])
	switch {
	case crc32.ChecksumIEEE(b[:8]) != binary.BigEndian.Uint32(b[8:12]):
		s.fail(ErrPreludeCRC)
	case total < frameMinLen || total > frameMaxLen:
		s.fail(ErrFrameLength)
	case headers > total-frameMinLen:
		s.fail(ErrFrameHeader)
	default:
		return int(total), true
	}
	return 0, false
}

func (s *StreamScanner) fail(err error) {
	s.err = fmt.Errorf("event stream frame at byte %d: %w", s.offset, err)
	s.pending = s.pending[:0]
}

// frameHeaders holds the string headers the scanner cares about; the slices
// alias the frame.
type frameHeaders struct {
	messageType, eventType, exceptionType, errorCode, errorMessage []byte
}

// frame checks and interprets one complete frame (prelude already validated).
func (s *StreamScanner) frame(f []byte) {
	end := len(f) - 4
	if crc32.ChecksumIEEE(f[:end]) != binary.BigEndian.Uint32(f[end:]) {
		s.fail(ErrMessageCRC)
		return
	}
	hlen := int(binary.BigEndian.Uint32(f[4:8]))
	h, ok := parseFrameHeaders(f[framePreludeLen : framePreludeLen+hlen])
	if !ok {
		s.fail(ErrFrameHeader)
		return
	}
	s.events++
	s.offset += int64(len(f))
	payload := f[framePreludeLen+hlen : end]

	switch string(h.messageType) {
	case "event":
		s.event(h.eventType, payload)
	case "exception":
		if !s.hasExc {
			s.hasExc, s.excType, s.excMsg = true, string(h.exceptionType), exceptionMessage(payload)
		}
	case "error":
		if !s.hasExc {
			s.hasExc, s.excType, s.excMsg = true, string(h.errorCode), string(h.errorMessage)
		}
	}
}

// parseFrameHeaders walks the header block, checking every header's encoding.
func parseFrameHeaders(b []byte) (frameHeaders, bool) {
	var h frameHeaders
	for len(b) > 0 {
		nameLen := int(b[0])
		b = b[1:]
		if len(b) < nameLen+1 {
			return h, false
		}
		name, typ := b[:nameLen], b[nameLen]
		b = b[nameLen+1:]
		var size int
		switch typ {
		case 0, 1: // true, false
		case 2: // int8
			size = 1
		case 3: // int16
			size = 2
		case 4: // int32
			size = 4
		case 5, 8: // int64, timestamp
			size = 8
		case 9: // UUID
			size = 16
		case 6, 7: // bytes, string: uint16 length
			if len(b) < 2 {
				return h, false
			}
			size = int(binary.BigEndian.Uint16(b))
			b = b[2:]
		default:
			return h, false
		}
		if len(b) < size {
			return h, false
		}
		val := b[:size]
		b = b[size:]
		if typ != 7 {
			continue
		}
		switch string(name) {
		case hdrMessageType:
			h.messageType = val
		case hdrEventType:
			h.eventType = val
		case hdrExceptionType:
			h.exceptionType = val
		case hdrErrorCode:
			h.errorCode = val
		case hdrErrorMessage:
			h.errorMessage = val
		}
	}
	return h, true
}

// exceptionMessage returns the "message" of an exception payload.
func exceptionMessage(payload []byte) string {
	var msg []byte
	_ = eachMember(payload, func(k, v []byte) {
		if string(k) == "message" || string(k) == "Message" {
			msg, _ = stringValue(v)
		}
	})
	return string(msg)
}

func (s *StreamScanner) event(eventType, payload []byte) {
	switch s.op {
	case OpConverseStream:
		switch string(eventType) {
		case "metadata":
			s.metadataEvent(payload)
		case "contentBlockDelta":
			s.textBytes += generatedTextBytes(payload, maxTextDepth)
		}
	case OpInvokeModelWithResponseStream, OpInvokeModelWithBidirectionalStream:
		if string(eventType) == "chunk" {
			s.chunkEvent(payload)
		}
	}
}

// metadataEvent reads the usage of ConverseStream's metadata event.
func (s *StreamScanner) metadataEvent(payload []byte) {
	var usage []byte
	if eachMember(payload, func(k, v []byte) {
		if string(k) == "usage" {
			usage = v
		}
	}) != nil || usage == nil {
		return
	}
	if u, ok := converseUsage(usage); ok {
		s.usage, s.hasUsage = u, true
	}
}

// Substrings that a native chunk must contain to be worth parsing. They start
// with bytes that are rare in JSON (not '"'), which keeps bytes.Index fast.
var (
	markInvocationMetrics = []byte(`-invocationMetrics"`)
	markMessage           = []byte(`message_`)
)

// chunkEvent decodes the native chunk of an InvokeModelWithResponseStream event
// and, only when a cheap substring test says it may carry usage, parses it.
func (s *StreamScanner) chunkEvent(payload []byte) {
	var b64 []byte
	if eachMember(payload, func(k, v []byte) {
		if string(k) == "bytes" {
			b64 = v
		}
	}) != nil || b64 == nil {
		return
	}
	b64, ok := stringValue(b64)
	if !ok {
		return
	}
	need := base64.StdEncoding.DecodedLen(len(b64))
	if cap(s.decoded) < need {
		s.decoded = make([]byte, need)
	}
	n, err := base64.StdEncoding.Decode(s.decoded[:need], b64)
	if err != nil {
		return
	}
	chunk := s.decoded[:n]
	s.textBytes += generatedTextBytes(chunk, maxTextDepth)
	switch {
	case bytes.Contains(chunk, markInvocationMetrics):
		s.metricsChunk(chunk)
	case bytes.Contains(chunk, markMessage):
		s.anthropicChunk(chunk)
	}
}

// metricsChunk reads amazon-bedrock-invocationMetrics, the authoritative usage
// every model family's last chunk carries. The same chunk may also be an
// Anthropic message_stop, which carries nothing else of interest.
func (s *StreamScanner) metricsChunk(chunk []byte) {
	var metrics []byte
	if eachMember(chunk, func(k, v []byte) {
		if string(k) == "amazon-bedrock-invocationMetrics" {
			metrics = v
		}
	}) != nil || metrics == nil {
		return
	}
	u, ok := usageObject(metrics, usageFields{
		input: "inputTokenCount", output: "outputTokenCount",
		cacheRead: "cacheReadInputTokenCount", cacheWrite: "cacheWriteInputTokenCount",
	}, true)
	if ok {
		s.usage, s.hasUsage = u, true
	}
}

// anthropicUsage names the members of an Anthropic usage object.
var anthropicUsage = usageFields{
	input: "input_tokens", output: "output_tokens",
	cacheRead: "cache_read_input_tokens", cacheWrite: "cache_creation_input_tokens",
}

// anthropicChunk keeps a best-effort usage from Anthropic's message_start
// (message.usage) and message_delta (usage, output_tokens cumulative), so that
// a stream cut before its metrics still tells what it consumed.
func (s *StreamScanner) anthropicChunk(chunk []byte) {
	var typ, message, usage []byte
	if eachMember(chunk, func(k, v []byte) {
		switch string(k) {
		case "type":
			typ = v
		case "message":
			message = v
		case "usage":
			usage = v
		}
	}) != nil {
		return
	}
	switch string(typ) {
	case `"message_start"`:
		if message == nil {
			return
		}
		usage = nil
		if eachMember(message, func(k, v []byte) {
			if string(k) == "usage" {
				usage = v
			}
		}) != nil || usage == nil {
			return
		}
		if u, ok := usageObject(usage, anthropicUsage, false); ok {
			s.partial, s.hasPartial = u, true
		}
	case `"message_delta"`:
		if usage == nil {
			return
		}
		u, ok := usageObject(usage, anthropicUsage, false)
		if !ok {
			return
		}
		// Counts are cumulative; a delta may omit the input side, so keep what
		// message_start reported unless the delta reports more.
		s.partial.InputTokens = max(s.partial.InputTokens, u.InputTokens)
		s.partial.CacheReadTokens = max(s.partial.CacheReadTokens, u.CacheReadTokens)
		s.partial.CacheWriteTokens = max(s.partial.CacheWriteTokens, u.CacheWriteTokens)
		s.partial.OutputTokens = max(s.partial.OutputTokens, u.OutputTokens)
		s.hasPartial = true
	}
}

// Usage returns the authoritative usage seen so far: the ConverseStream
// metadata event or the invocation metrics of InvokeModelWithResponseStream.
// ok is false until one has been seen.
func (s *StreamScanner) Usage() (Usage, bool) { return s.usage, s.hasUsage }

// PartialUsage returns the best usage known so far: the authoritative usage
// when it has been seen, otherwise the counts Anthropic's message_start and
// message_delta chunks reported (a lower bound of what a cut stream consumed).
// ok is false when neither has been seen.
func (s *StreamScanner) PartialUsage() (Usage, bool) {
	if s.hasUsage {
		return s.usage, true
	}
	return s.partial, s.hasPartial
}

// OutputSeen estimates the output tokens generated so far, for a stream that
// ends without its usage: Anthropic's own cumulative count when its chunks
// carried one (message_start reports only the first token, so the larger of
// the two wins), else the generated text seen, converted with TokensForBytes.
func (s *StreamScanner) OutputSeen() int64 {
	return max(s.partial.OutputTokens, TokensForBytes(s.textBytes))
}

// Exception returns the first exception or error frame seen: typ is the
// :exception-type (or :error-code) exactly as sent, message its text.
func (s *StreamScanner) Exception() (typ, message string, ok bool) {
	return s.excType, s.excMsg, s.hasExc
}

// Events returns how many complete, valid frames have been seen.
func (s *StreamScanner) Events() int { return s.events }

// Err returns the first framing error (wrapping ErrFrameLength, ErrPreludeCRC,
// ErrMessageCRC or ErrFrameHeader), or nil. After one, writes are ignored.
func (s *StreamScanner) Err() error { return s.err }

// Partial reports whether an incomplete frame is buffered: if the stream ended
// now, it would have been truncated mid-frame.
func (s *StreamScanner) Partial() bool { return len(s.pending) > 0 }
