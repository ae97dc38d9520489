package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bedrock-gateway/gateway/internal/state"
)

// Marker is the identity of a store: written with its first change and never
// removed by the gateway, so a store that lost it (and with it, perhaps, its
// state and tombstones) can be told from one that was never initialized.
//
// A replica that finds the marker gone writes it back with Wiped set and keeps
// serving its last snapshot; a bootstrap never seeds a store that has a marker,
// wiped or not. (On Redis Cluster each shard can carry such a marker under a
// hash tag of its own; this one lives with the state, under {state}.)
type Marker struct {
	// ID is random, 128 bits in hex.
	ID string `json:"id"`
	// InitializedAt is when the store was first written.
	InitializedAt time.Time `json:"initialized_at"`
	// Wiped is set when the marker was found missing and written back.
	Wiped   bool      `json:"wiped,omitempty"`
	WipedAt time.Time `json:"wiped_at,omitzero"`
}

// errInitialized aborts a seed when another writer initialized the store first.
var errInitialized = errors.New("store already initialized")

// Marker returns the store's marker, or nil when it has none (never
// initialized, initialized before markers existed, or wiped).
func (s *Store) Marker(ctx context.Context) (*Marker, error) {
	b, err := s.client.Get(ctx, s.keys.marker).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading store marker: %w", err)
	}
	var m Marker
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("decoding store marker: %w", err)
	}
	return &m, nil
}

// newMarker encodes a fresh marker; commit writes it only when none exists.
func newMarker(now time.Time) ([]byte, error) {
	var id [16]byte
	if _, err := rand.Read(id[:]); err != nil {
		return nil, fmt.Errorf("store marker ID: %w", err)
	}
	b, err := json.Marshal(Marker{ID: hex.EncodeToString(id[:]), InitializedAt: now})
	if err != nil {
		return nil, fmt.Errorf("encoding store marker: %w", err)
	}
	return b, nil
}

// Seed initializes a store that never was: when it has no marker and holds no
// state (no organization, entitlements, credentials or revoked keys), it runs
// fn on the empty state and stores the result with the marker, as Update
// does, and reports true. Otherwise it writes nothing and reports false. Two
// replicas seeding at once write once: the loser finds the marker.
func (s *Store) Seed(ctx context.Context, actor string, fn func(st *state.State) error) (seeded bool, version uint64, err error) {
	version, seeded, err = s.update(ctx, actor, "bootstrap", true, fn)
	return seeded, version, err
}

func isEmptyState(st *state.State) bool {
	return isZeroOrg(&st.Organization) && len(st.Entitlements) == 0 && len(st.Credentials) == 0 && st.Revoked.IsZero()
}
