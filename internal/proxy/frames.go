package proxy

import (
	"encoding/binary"

	"github.com/bedrock-gateway/gateway/internal/bedrock"
)

// frameSplitter tracks event-stream frame boundaries in the forwarded bytes so
// the proxy forwards only whole frames: each frame is flushed as soon as its last
// byte arrives, and if the upstream fails mid-stream the client's stream still
// ends on a frame boundary, where an exception frame can follow cleanly. It reads
// only the 4-byte length prefixes; CRCs are the scanner's business.
type frameSplitter struct {
	need int // bytes still missing from the current frame, or 0 at a boundary
	pre  [4]byte
	npre int // bytes of the current frame's length prefix seen so far
	bad  bool
}

// maxFrame bounds a frame's declared length, as the SDK decoders do.
const maxFrame = 16 << 20

// boundary returns how many bytes of p complete whole frames (counting bytes of
// frames begun in earlier calls); the rest belongs to an unfinished frame. After
// a malformed length it returns len(p): the stream is passed through unchanged.
func (s *frameSplitter) boundary(p []byte) int {
	if s.bad {
		return len(p)
	}
	end := 0
	i := 0
	for i < len(p) {
		if s.need == 0 {
			// Reading the 4-byte total length of a new frame.
			for s.npre < 4 && i < len(p) {
				s.pre[s.npre] = p[i]
				s.npre++
				i++
			}
			if s.npre < 4 {
				return end
			}
			total := int(binary.BigEndian.Uint32(s.pre[:]))
			if total < 16 || total > maxFrame {
				s.bad = true
				return len(p)
			}
			s.need = total - 4
			s.npre = 0
		}
		take := min(s.need, len(p)-i)
		s.need -= take
		i += take
		if s.need == 0 {
			end = i
		}
	}
	return end
}

// frameForwarder writes an event stream to the client whole frames at a time,
// flushing after each write that completed a frame, while its scanner reads
// usage from the frames. Only the unfinished tail of a frame is held back.
type frameForwarder struct {
	w       *responseWriter
	scanner *bedrock.StreamScanner
	split   frameSplitter
	carry   []byte // the unfinished frame held back
}

func newFrameForwarder(w *responseWriter, op bedrock.Operation) *frameForwarder {
	return &frameForwarder{w: w, scanner: bedrock.NewStreamScanner(op)}
}

// write forwards the complete frames that chunk finishes and holds back the rest.
func (f *frameForwarder) write(chunk []byte) {
	_, _ = f.scanner.Write(chunk)
	if b := f.split.boundary(chunk); b > 0 {
		if len(f.carry) > 0 {
			_, _ = f.w.Write(f.carry)
			f.carry = f.carry[:0]
		}
		_, _ = f.w.Write(chunk[:b])
		f.w.Flush()
		chunk = chunk[b:]
	}
	f.carry = append(f.carry, chunk...)
}
