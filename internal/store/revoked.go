package store

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/bedrock-gateway/gateway/internal/state"
)

// Members of the revoked set name the kind of key, so the two kinds can never
// collide and the set reads plainly in redis-cli.
const (
	revokedAccessKey = "access_key_id:"
	revokedAPIKey    = "api_key_sha256:"
)

// encodeRevoked turns the tombstones into set members, each with its audit
// form (JSON naming the key, as the state file does).
func encodeRevoked(r *state.Revoked) (map[string]item, error) {
	m := make(map[string]item, len(r.AccessKeyIDs)+len(r.APIKeySHA256))
	add := func(member, field, value string) error {
		if value == "" {
			return fmt.Errorf("%w: an empty revoked %s", ErrInvalid, field)
		}
		a, err := json.Marshal(map[string]string{field: value})
		if err != nil {
			return fmt.Errorf("encoding revoked %s: %w", field, err)
		}
		m[member] = item{stored: []byte(member), audit: a}
		return nil
	}
	for _, id := range r.AccessKeyIDs {
		if err := add(revokedAccessKey+id, "access_key_id", id); err != nil {
			return nil, err
		}
	}
	for _, h := range r.APIKeySHA256 {
		h = strings.ToLower(h)
		if err := add(revokedAPIKey+h, "api_key_sha256", h); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// decodeRevoked reads the set back, sorted (state.Revoked's normal form).
func decodeRevoked(members []string) (state.Revoked, error) {
	var r state.Revoked
	for _, m := range members {
		switch {
		case strings.HasPrefix(m, revokedAccessKey):
			r.AccessKeyIDs = append(r.AccessKeyIDs, strings.TrimPrefix(m, revokedAccessKey))
		case strings.HasPrefix(m, revokedAPIKey):
			r.APIKeySHA256 = append(r.APIKeySHA256, strings.TrimPrefix(m, revokedAPIKey))
		default:
			return state.Revoked{}, fmt.Errorf("decoding revoked keys: unknown member %q", m)
		}
	}
	st := state.State{Revoked: r}
	st.Normalize()
	return st.Revoked, nil
}
