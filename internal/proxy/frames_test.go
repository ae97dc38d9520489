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
	// Every way of cutting the stream into two reads ends on the same boundaries.
	for cut := 0; cut <= len(stream); cut++ {
		var s frameSplitter
		s.boundary(stream[:cut])
		atCut := s.atBoundary()
		want := cut == 0 || cut == 20 || cut == 120 || cut == 136
		if atCut != want {
			t.Fatalf("cut %d: atBoundary %v, want %v", cut, atCut, want)
		}
		s.boundary(stream[cut:])
		if !s.atBoundary() {
			t.Fatalf("cut %d: not at boundary after the whole stream", cut)
		}
	}
	// One byte at a time.
	var s frameSplitter
	for i := range stream {
		s.boundary(stream[i : i+1])
	}
	if !s.atBoundary() {
		t.Fatal("byte-at-a-time: not at boundary")
	}
}

func TestFrameSplitterBadLength(t *testing.T) {
	t.Parallel()
	var s frameSplitter
	if n := s.boundary([]byte{0, 0, 0, 3, 9, 9}); n != 6 || s.atBoundary() {
		t.Fatalf("bad length: n=%d atBoundary=%v", n, s.atBoundary())
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
