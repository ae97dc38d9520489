package authn

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// StaticLookup is a map-backed Lookup for the simulator, tests and tools.
// It is not safe to add credentials while it is being used.
type StaticLookup struct {
	byAccessKey map[string]*Credential
	byHash      map[[32]byte]*Credential
}

// NewStaticLookup returns a Lookup holding creds, which must be sigv4
// credentials (ID is the access key ID, Secret set). Add API keys with AddAPIKey.
func NewStaticLookup(creds ...*Credential) (*StaticLookup, error) {
	l := &StaticLookup{byAccessKey: make(map[string]*Credential), byHash: make(map[[32]byte]*Credential)}
	for _, c := range creds {
		if err := l.AddAccessKey(c); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// AddAccessKey adds a sigv4 credential under its ID.
func (l *StaticLookup) AddAccessKey(c *Credential) error {
	switch {
	case c == nil:
		return errors.New("adding access key: nil credential")
	case c.Kind != KindSigV4:
		return fmt.Errorf("adding access key %q: kind %q is not %s (add API keys with AddAPIKey)", c.ID, c.Kind, KindSigV4)
	case c.ID == "" || c.Secret == "":
		return fmt.Errorf("adding access key %q: access key ID and secret are required", c.ID)
	}
	if _, dup := l.byAccessKey[c.ID]; dup {
		return fmt.Errorf("adding access key %q: duplicate", c.ID)
	}
	l.byAccessKey[c.ID] = c
	return nil
}

// AddAPIKey adds an api_key credential under the SHA-256 of its key.
func (l *StaticLookup) AddAPIKey(sum [32]byte, c *Credential) error {
	switch {
	case c == nil:
		return errors.New("adding API key: nil credential")
	case c.Kind != KindAPIKey:
		return fmt.Errorf("adding API key %q: kind %q is not %s", c.ID, c.Kind, KindAPIKey)
	}
	if _, dup := l.byHash[sum]; dup {
		return fmt.Errorf("adding API key %q: duplicate", c.ID)
	}
	l.byHash[sum] = c
	return nil
}

// ByAccessKeyID implements Lookup.
func (l *StaticLookup) ByAccessKeyID(accessKeyID string) (*Credential, bool) {
	c, ok := l.byAccessKey[accessKeyID]
	return c, ok
}

// ByAPIKeyHash implements Lookup.
func (l *StaticLookup) ByAPIKeyHash(sum [32]byte) (*Credential, bool) {
	c, ok := l.byHash[sum]
	return c, ok
}

// VerifyStatic authenticates r, whose body has already been read into body,
// against creds. It is the simulator's signature check; errors are
// *bedrock.Error.
func VerifyStatic(v *Verifier, r *http.Request, body []byte, creds Lookup) error {
	sum := sha256.Sum256(body)
	_, err := v.Authenticate(r, hex.EncodeToString(sum[:]), creds)
	return err
}

// StreamVerifier returns what the simulator needs to check a bidirectional
// stream: the request's signature (payload hash STREAMING-AWS4-HMAC-SHA256-EVENTS)
// and then each envelope of its signed chunk chain.
func StreamVerifier(v *Verifier, creds Lookup) func(r *http.Request) (func(io.Reader) ([]byte, bool, error), error) {
	return func(r *http.Request) (func(io.Reader) ([]byte, bool, error), error) {
		res, err := v.Authenticate(r, StreamingEvents, creds)
		if err != nil {
			return nil, err
		}
		cv, err := v.NewChunkVerifier(res)
		if err != nil {
			return nil, err
		}
		return cv.Next, nil
	}
}
