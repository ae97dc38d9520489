package proxy

import (
	"encoding/binary"
	"testing"
)

func frame(n int) []byte {
	b := make([]byte, n)
	binary.BigEndian.PutUint32(b, uint32(n))
	return b
}

func TestFrameSplitterTracksBoundaries(t *testing.T) {
	t.Parallel()
	stream := append(append(frame(20), frame(100)...), frame(16)...)
	// Every way of cutting the stream into two reads ends on the same
	// boundaries: boundary reports how much of a read ends a frame.
	for cut := 0; cut <= len(stream); cut++ {
		var s frameSplitter
		first := s.boundary(stream[:cut])
		want := 0
		for _, b := range []int{20, 120, 136} {
			if b <= cut {
				want = b
			}
		}
		if first != want {
			t.Fatalf("cut %d: boundary %d, want %d", cut, first, want)
		}
		if n := s.boundary(stream[cut:]); n != len(stream)-cut {
			t.Fatalf("cut %d: the rest of the stream ends %d bytes in, want %d", cut, n, len(stream)-cut)
		}
	}
	// One byte at a time: each frame's last byte ends it.
	var s frameSplitter
	ends := 0
	for i := range stream {
		if s.boundary(stream[i:i+1]) == 1 {
			ends++
		}
	}
	if ends != 3 {
		t.Fatalf("byte-at-a-time: %d frame ends, want 3", ends)
	}
}

func TestFrameSplitterBadLength(t *testing.T) {
	t.Parallel()
	var s frameSplitter
	if n := s.boundary([]byte{0, 0, 0, 3, 9, 9}); n != 6 || !s.bad {
		t.Fatalf("bad length: n=%d bad=%v", n, s.bad)
	}
}

func FuzzFrameSplitter(f *testing.F) {
	f.Add(frame(16), 3)
	f.Fuzz(func(t *testing.T, data []byte, cut int) {
		var s frameSplitter
		if cut < 0 || cut > len(data) {
			cut = len(data) / 2
		}
		if n := s.boundary(data[:cut]); n < 0 || n > cut {
			t.Fatalf("boundary %d out of range", n)
		}
		s.boundary(data[cut:])
	})
}
