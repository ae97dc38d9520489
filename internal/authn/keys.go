package authn

import (
	"crypto/hmac"
	"crypto/sha256"
	"strings"
	"sync"
)

// signingService is the SigV4 signing name of bedrock-runtime (and of the
// bedrock control plane).
const signingService = "bedrock"

// deriveSigningKey runs the SigV4 key derivation chain
// "AWS4"+secret -> date -> region -> service -> "aws4_request".
func deriveSigningKey(secret, date, region, service string) [32]byte {
	mac := func(key []byte, data string) []byte {
		h := hmac.New(sha256.New, key)
		h.Write([]byte(data))
		return h.Sum(nil)
	}
	k := mac([]byte("AWS4"+secret), date)
	k = mac(k, region)
	k = mac(k, service)
	k = mac(k, "aws4_request")
	var out [32]byte
	copy(out[:], k)
	return out
}

// hmacSHA256 computes HMAC-SHA256(key, msg) for a key of at most one block
// without allocating: buf is scratch space the caller owns and gets back
// (possibly grown). crypto/hmac allocates two hash states per call, which on
// the per-request path costs more than the rest of verification.
func hmacSHA256(buf []byte, key []byte, msg []byte) ([32]byte, []byte) {
	const blockSize = 64
	buf = buf[:0]
	for i := 0; i < blockSize; i++ {
		var k byte
		if i < len(key) {
			k = key[i]
		}
		buf = append(buf, k^0x36)
	}
	buf = append(buf, msg...)
	inner := sha256.Sum256(buf)
	var outer [blockSize + sha256.Size]byte
	for i := 0; i < blockSize; i++ {
		var k byte
		if i < len(key) {
			k = key[i]
		}
		outer[i] = k ^ 0x5c
	}
	copy(outer[blockSize:], inner[:])
	return sha256.Sum256(outer[:]), buf
}

type keyCacheKey struct{ accessKeyID, secret, date, region, service string }

// keyCache holds derived signing keys so the HMAC chain runs once per key
// (and secret: a rotated secret under the same key ID gets its own entry),
// region, service and day. It is bounded: it empties itself when a new day's key
// arrives (yesterday's keys are useless a few minutes after midnight) and when
// it is full (any region is accepted, so its key count is otherwise open).
type keyCache struct {
	mu   sync.RWMutex
	m    map[keyCacheKey]*[32]byte
	day  string // latest credential-scope date seen
	size int
}

func newKeyCache(size int) *keyCache {
	return &keyCache{m: make(map[keyCacheKey]*[32]byte), size: size}
}

// get returns the signing key; the returned slice must not be modified.
func (c *keyCache) get(accessKeyID, secret, date, region, service string) []byte {
	k := keyCacheKey{accessKeyID, secret, date, region, service}
	c.mu.RLock()
	e := c.m[k]
	c.mu.RUnlock()
	if e != nil {
		return e[:len(e):len(e)]
	}
	key := deriveSigningKey(secret, date, region, service)
	// The parts are substrings of the request's Authorization header: copy
	// them so the cache does not keep whole headers alive.
	k = keyCacheKey{strings.Clone(accessKeyID), secret, strings.Clone(date), strings.Clone(region), strings.Clone(service)}
	c.mu.Lock()
	if date > c.day {
		clear(c.m)
		c.day = k.date
	}
	if len(c.m) >= c.size {
		clear(c.m)
	}
	c.m[k] = &key
	c.mu.Unlock()
	return key[:len(key):len(key)]
}

func (c *keyCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}
