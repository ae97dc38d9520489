package proxy

import (
	"crypto/rand"
	"encoding/hex"
	"sync/atomic"
)

// requestIDs makes UUID-shaped request IDs: a random per-process prefix and a
// counter, so minting one costs no system call.
type requestIDs struct {
	prefix [8]byte
	n      atomic.Uint64
}

func (g *requestIDs) init() { _, _ = rand.Read(g.prefix[:]) }

func (g *requestIDs) next() string {
	var raw [16]byte
	copy(raw[:8], g.prefix[:])
	v := g.n.Add(1)
	for i := 15; i >= 8; i-- {
		raw[i] = byte(v)
		v >>= 8
	}
	raw[6] = raw[6]&0x0f | 0x40
	raw[8] = raw[8]&0x3f | 0x80
	var b [36]byte
	hex.Encode(b[0:8], raw[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], raw[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], raw[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], raw[8:10])
	b[23] = '-'
	hex.Encode(b[24:36], raw[10:16])
	return string(b[:])
}
