// Package store owns the gateway's state in Redis, its system of record: the
// organization, entitlements with their shares, credentials and the audit log.
// It writes changes under optimistic concurrency, tells every replica about them
// (pub/sub, with a version poll as fallback) and keeps each replica's snapshot
// current through a Syncer.
//
// Every key lives under one hash tag ({state}) so transactions and WATCH work on
// Redis Cluster as on a single node:
//
//	<prefix>:{state}:version       counter, incremented by every change
//	<prefix>:{state}:org           JSON of state.Organization
//	<prefix>:{state}:entitlements  hash: name -> JSON of state.Entitlement
//	<prefix>:{state}:credentials   hash: ID -> JSON of state.Credential
//	<prefix>:{state}:revoked       set: "access_key_id:<ID>" and "api_key_sha256:<hex>", never shrinks
//	<prefix>:{state}:denied_principals  set: IAM principal patterns refused outright
//	<prefix>:{state}:marker        JSON of Marker, set once when the store is first written
//	<prefix>:{state}:time_zone     the --time-zone of the replicas (CheckTimeZone)
//	<prefix>:{state}:audit         stream of AuditEntry
//	<prefix>:{state}:changes       pub/sub channel carrying the new version
package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bedrock-gateway/gateway/internal/state"
)

// Defaults for Options.
const (
	DefaultPrefix       = "gw"
	DefaultPollInterval = 500 * time.Millisecond
	DefaultAuditMax     = 100000
)

var (
	// ErrConflict means Update gave up after too many concurrent writers won.
	ErrConflict = errors.New("store: too many concurrent updates, giving up")
	// ErrInvalid means a state cannot be stored as given: an item without its
	// key, two items with one key, or a plaintext API key.
	ErrInvalid = errors.New("store: state cannot be stored")
)

// Options configure a Store.
type Options struct {
	// Client is required; a single-node, Sentinel or Cluster client.
	Client redis.UniversalClient
	// Prefix of every key; default "gw". It must not contain braces, since the
	// store adds its own hash tag.
	Prefix string
	// Logger; default discards.
	Logger *slog.Logger
	// PollInterval is how often Watch checks the version when no pub/sub message
	// came, so a missed message delays a change by at most about this much.
	// Default 500ms.
	PollInterval time.Duration
	// AuditMax is about how many audit entries are kept (older ones are trimmed).
	// Default 100000.
	AuditMax int64
	// Now stamps audit entries; default time.Now.
	Now func() time.Time
}

// Store reads and writes the state in Redis. It is safe for concurrent use.
type Store struct {
	client  redis.UniversalClient
	log     *slog.Logger
	poll    time.Duration
	max     int64
	now     func() time.Time
	keys    keys
	prefix  string
	channel string
	cache   decodeCache
}

type keys struct {
	version, org, entitlements, credentials, audit, revoked, marker string
	timeZone                                                        string
	deniedPrincipals                                                string
}

// New returns a Store; it does not touch Redis.
func New(opts Options) (*Store, error) {
	if opts.Client == nil {
		return nil, errors.New("store: a Redis client is required")
	}
	prefix := opts.Prefix
	if prefix == "" {
		prefix = DefaultPrefix
	}
	if strings.ContainsAny(prefix, "{}") {
		return nil, fmt.Errorf("store: prefix %q must not contain braces", prefix)
	}
	s := &Store{
		client: opts.Client,
		log:    opts.Logger,
		poll:   opts.PollInterval,
		max:    opts.AuditMax,
		now:    opts.Now,
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.poll <= 0 {
		s.poll = DefaultPollInterval
	}
	if s.max <= 0 {
		s.max = DefaultAuditMax
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.prefix = prefix
	base := prefix + ":{state}:"
	s.keys = keys{
		version:      base + "version",
		org:          base + "org",
		entitlements: base + "entitlements",
		credentials:  base + "credentials",
		audit:        base + "audit",
		revoked:      base + "revoked",
		marker:       base + "marker",
		timeZone:     base + "time_zone",
	}
	s.keys.deniedPrincipals = base + "denied_principals"
	s.channel = base + "changes"
	return s, nil
}

// Version returns the current state version; 0 when nothing was ever stored.
func (s *Store) Version(ctx context.Context) (uint64, error) {
	v, err := parseVersion(s.client.Get(ctx, s.keys.version))
	if err != nil {
		return 0, fmt.Errorf("reading state version: %w", err)
	}
	return v, nil
}

func parseVersion(cmd *redis.StringCmd) (uint64, error) {
	v, err := cmd.Uint64()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	return v, err
}

// raw is the stored state as read in one transaction.
type raw struct {
	version      uint64
	org          string
	entitlements map[string]string
	credentials  map[string]string
	revoked      []string
	marker       []byte // nil: no marker
	denied       []string
}

// loadRaw reads the version and every state key in one MULTI/EXEC, so the data
// is exactly that of the version.
func (s *Store) loadRaw(ctx context.Context) (*raw, error) {
	var (
		ver   *redis.StringCmd
		org   *redis.StringCmd
		ents  *redis.MapStringStringCmd
		creds *redis.MapStringStringCmd
		revk  *redis.StringSliceCmd
		mark  *redis.StringCmd
		deny  *redis.StringSliceCmd
	)
	_, err := s.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		ver = p.Get(ctx, s.keys.version)
		org = p.Get(ctx, s.keys.org)
		ents = p.HGetAll(ctx, s.keys.entitlements)
		creds = p.HGetAll(ctx, s.keys.credentials)
		revk = p.SMembers(ctx, s.keys.revoked)
		mark = p.Get(ctx, s.keys.marker)
		deny = p.SMembers(ctx, s.keys.deniedPrincipals)
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, err
	}
	r := &raw{}
	if r.version, err = parseVersion(ver); err != nil {
		return nil, fmt.Errorf("version: %w", err)
	}
	if r.org, err = org.Result(); err != nil && !errors.Is(err, redis.Nil) {
		return nil, err
	}
	if r.entitlements, err = ents.Result(); err != nil {
		return nil, err
	}
	if r.credentials, err = creds.Result(); err != nil {
		return nil, err
	}
	if r.revoked, err = revk.Result(); err != nil {
		return nil, err
	}
	if r.denied, err = deny.Result(); err != nil {
		return nil, err
	}
	if b, err := mark.Bytes(); err == nil {
		r.marker = b
	} else if !errors.Is(err, redis.Nil) {
		return nil, err
	}
	return r, nil
}

// decodeCache keeps the items of the last decoded state with the exact stored
// JSON they came from, so a reload after a change decodes only what changed:
// with 10,000 entitlements, JSON decoding dominates a full reload.
type decodeCache struct {
	mu           sync.Mutex
	entitlements map[string]cached[state.Entitlement]
	credentials  map[string]cached[state.Credential]
}

type cached[T any] struct {
	raw  string
	item T
}

// decode turns the stored form into a State: entitlements sorted by name,
// credentials by ID, the organization as stored. The result shares nothing with
// the cache, so the caller may change it.
func (s *Store) decode(r *raw) (*state.State, error) {
	c := &s.cache
	c.mu.Lock()
	defer c.mu.Unlock()
	st := &state.State{}
	if r.org != "" {
		if err := json.Unmarshal([]byte(r.org), &st.Organization); err != nil {
			return nil, fmt.Errorf("decoding organization: %w", err)
		}
	}
	ents, entCache, err := decodeItems(r.entitlements, c.entitlements, "entitlement")
	if err != nil {
		return nil, err
	}
	creds, credCache, err := decodeItems(r.credentials, c.credentials, "credential")
	if err != nil {
		return nil, err
	}
	c.entitlements, c.credentials = entCache, credCache
	if st.Revoked, err = decodeRevoked(r.revoked); err != nil {
		return nil, err
	}
	if len(r.denied) > 0 {
		st.DeniedPrincipals = slices.Sorted(slices.Values(r.denied))
	}
	// The items still alias the cache (their slices): hand out a deep copy.
	st.Entitlements, st.Credentials = ents, creds
	return st.Clone(), nil
}

// decodeItems decodes a stored hash in key order, reusing cached items whose
// JSON did not change; it returns the items and the cache for the next call.
func decodeItems[T any](stored map[string]string, old map[string]cached[T], what string) ([]T, map[string]cached[T], error) {
	items := make([]T, 0, len(stored))
	next := make(map[string]cached[T], len(stored))
	for _, key := range sortedKeys(stored) {
		raw := stored[key]
		c, ok := old[key]
		if !ok || c.raw != raw {
			c = cached[T]{raw: raw}
			if err := json.Unmarshal([]byte(raw), &c.item); err != nil {
				return nil, nil, fmt.Errorf("decoding %s %q: %w", what, key, err)
			}
		}
		next[key] = c
		items = append(items, c.item)
	}
	return items, next, nil
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// Load reads the whole state and the version it belongs to. The caller owns the
// returned State.
func (s *Store) Load(ctx context.Context) (*state.State, uint64, error) {
	r, err := s.loadRaw(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("loading state: %w", err)
	}
	st, err := s.decode(r)
	if err != nil {
		return nil, 0, fmt.Errorf("loading state version %d: %w", r.version, err)
	}
	return st, r.version, nil
}

func formatVersion(v uint64) string { return strconv.FormatUint(v, 10) }
