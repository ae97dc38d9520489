package authn

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
)

// Credential kinds (Credential.Kind), as in the state file.
const (
	KindSigV4  = "sigv4"
	KindAPIKey = "api_key"
)

const (
	accessKeyPrefix = "GW"
	accessKeyRandom = 18 // AWS access key IDs are 20 characters too
	apiKeyPrefix    = "bgw-"
	apiKeyBytes     = 32 // 43 base64url characters, 256 bits
	secretBytes     = 30 // 40 base64 characters, like an AWS secret access key
)

// NewAccessKey issues a SigV4 access key: an ID of "GW" and 18 upper-case
// letters and digits, and a 40-character secret drawn from the base64
// alphabet, like AWS's. Both come from crypto/rand.
func NewAccessKey() (accessKeyID, secret string, err error) {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	id := make([]byte, 0, len(accessKeyPrefix)+accessKeyRandom)
	id = append(id, accessKeyPrefix...)
	var b [1]byte
	for len(id) < cap(id) {
		if _, err := rand.Read(b[:]); err != nil {
			return "", "", fmt.Errorf("issuing access key: %w", err)
		}
		// Rejection sampling keeps the distribution uniform: 252 = 7*36.
		if b[0] >= 252 {
			continue
		}
		id = append(id, alphabet[b[0]%36])
	}
	var s [secretBytes]byte
	if _, err := rand.Read(s[:]); err != nil {
		return "", "", fmt.Errorf("issuing access key: %w", err)
	}
	return string(id), base64.StdEncoding.EncodeToString(s[:]), nil
}

// NewAPIKey issues a bearer API key, "bgw-" and 43 URL-safe characters
// (256 random bits), and the hex SHA-256 under which it is stored: the key
// itself is shown once and never kept.
func NewAPIKey() (key string, sha256Hex string, err error) {
	var b [apiKeyBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", fmt.Errorf("issuing API key: %w", err)
	}
	key = apiKeyPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	sum := HashAPIKey(key)
	return key, hex.EncodeToString(sum[:]), nil
}

// HashAPIKey is the SHA-256 of an API key: the form in which keys are stored
// and looked up, so raw keys are never compared.
func HashAPIKey(key string) (sum [32]byte) {
	return sha256.Sum256([]byte(key))
}
