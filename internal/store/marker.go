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
	// Epoch counts recoveries: an apply to a wiped store clears Wiped and
	// increments it, which tells replicas to take the restored state although
	// its version counter started again from zero.
	Epoch int `json:"epoch,omitempty"`
	// Shards lists the hash tags of the per-shard markers on Redis Cluster
	// (shards.go); empty elsewhere.
	Shards []string `json:"shards,omitempty"`
}

// ErrWiped refuses a change to a store that lost its data: only an apply of a
// whole state (gateway apply -f BACKUP) restores it.
var ErrWiped = errors.New("the state store lost its data (Redis restarted empty or was flushed): restore it with gateway apply -f <backup from gateway export --include-secrets>")

// markWipedScript writes the marker back flagged wiped, unless another
// replica already did or an operator recovered the store meanwhile (a marker
// of a later epoch, or of another store, is left alone). KEYS[1] the marker;
// ARGV[1] the wiped marker's JSON; ARGV[2] its ID; ARGV[3] its epoch.
var markWipedScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur then
  local ok, m = pcall(cjson.decode, cur)
  if not ok or m.id ~= ARGV[2] or (tonumber(m.epoch) or 0) ~= tonumber(ARGV[3]) or m.wiped then
    return 0
  end
end
redis.call('SET', KEYS[1], ARGV[1])
return 1
`)

// MarkWiped flags the store as wiped, keeping the identity (ID, epoch) the
// replica knew: from then on the store refuses every change but an apply of a
// whole state, and no bootstrap seeds it.
func (s *Store) MarkWiped(ctx context.Context, known Marker) error {
	m := known
	m.Wiped, m.WipedAt = true, s.now().UTC()
	b, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("encoding store marker: %w", err)
	}
	if err := markWipedScript.Run(ctx, s.client, []string{s.keys.marker}, b, m.ID, m.Epoch).Err(); err != nil {
		return fmt.Errorf("marking the store wiped: %w", err)
	}
	return nil
}

// LoadMarked is Load, with the store's marker read in the same transaction
// (nil when the store has none).
func (s *Store) LoadMarked(ctx context.Context) (*state.State, uint64, *Marker, error) {
	r, err := s.loadRaw(ctx)
	if err != nil {
		return nil, 0, nil, fmt.Errorf("loading state: %w", err)
	}
	m, err := decodeMarker(r.marker)
	if err != nil {
		return nil, 0, nil, err
	}
	st, err := s.decode(r)
	if err != nil {
		return nil, 0, nil, fmt.Errorf("loading state version %d: %w", r.version, err)
	}
	return st, r.version, m, nil
}

func decodeMarker(b []byte) (*Marker, error) {
	if b == nil {
		return nil, nil
	}
	var m Marker
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("decoding store marker: %w", err)
	}
	return &m, nil
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
	return decodeMarker(b)
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
	return isZeroOrg(&st.Organization) && len(st.Entitlements) == 0 && len(st.Credentials) == 0 && st.Revoked.IsZero() &&
		len(st.DeniedPrincipals) == 0
}
