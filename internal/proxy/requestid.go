package proxy

import (
	crand "crypto/rand"
	"encoding/hex"
	"math/rand/v2"
	"sync"
)

// requestIDs makes random UUID-shaped (version 4) request IDs, as Bedrock's
// look. They are random rather than counted so that they do not tell a
// caller how much traffic the gateway serves. ChaCha8 seeded from crypto/rand
// is a cryptographically strong generator that costs no system call per ID.
type requestIDs struct {
	mu  sync.Mutex
	rng *rand.ChaCha8
}

func (g *requestIDs) init() {
	var seed [32]byte
	_, _ = crand.Read(seed[:]) // never fails (Go 1.24+)
	g.rng = rand.NewChaCha8(seed)
}

func (g *requestIDs) next() string {
	var raw [16]byte
	g.mu.Lock()
	_, _ = g.rng.Read(raw[:])
	g.mu.Unlock()
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
