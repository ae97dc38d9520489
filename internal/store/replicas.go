package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Replica heartbeats. Every replica writes what it serves into
//
//	<prefix>:{state}:replicas       hash: id -> JSON of Replica (seen_at unset)
//	<prefix>:{state}:replicas_seen  zset: id -> last beat, Redis time in ms
//
// every HeartbeatOptions.Interval; a replica whose last beat is older than
// the TTL is not live and is pruned by the next beat of any replica. Redis
// dates the beats, so replicas whose clocks disagree still agree on who is
// live. Both keys expire when no replica beats for a while.

// Replica is one live gateway replica as its heartbeat reports it.
type Replica struct {
	ID string `json:"id"`
	// SnapshotVersion is the state version the replica serves.
	SnapshotVersion uint64    `json:"snapshot_version"`
	StartedAt       time.Time `json:"started_at"`
	// SeenAt is the replica's last beat, by Redis time.
	SeenAt time.Time `json:"seen_at"`
	// Version is the gateway build the replica runs.
	Version string `json:"version,omitempty"`
}

// Heartbeat defaults.
const (
	DefaultHeartbeatInterval = time.Second
	DefaultHeartbeatTTL      = 5 * time.Second
)

// beatScript records one beat and prunes replicas not seen within the TTL.
// KEYS: hash, zset. ARGV: id, JSON, ttl ms. Returns the Redis time in ms.
var beatScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[3])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], now, ARGV[1])
local stale = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '(' .. (now - ttl), 'LIMIT', 0, 100)
if #stale > 0 then
  redis.call('ZREM', KEYS[2], unpack(stale))
  redis.call('HDEL', KEYS[1], unpack(stale))
end
redis.call('PEXPIRE', KEYS[1], ttl * 10)
redis.call('PEXPIRE', KEYS[2], ttl * 10)
return now
`)

// liveScript lists the replicas seen within the TTL.
// KEYS: hash, zset. ARGV: ttl ms. Returns {id, seen ms, JSON, ...}.
var liveScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ids = redis.call('ZRANGEBYSCORE', KEYS[2], now - tonumber(ARGV[1]), '+inf', 'WITHSCORES')
local out = {}
for i = 1, #ids, 2 do
  out[#out + 1] = ids[i]
  out[#out + 1] = ids[i + 1]
  out[#out + 1] = redis.call('HGET', KEYS[1], ids[i]) or ''
end
return out
`)

func (s *Store) replicaKeys() []string {
	base := s.prefix + ":{state}:"
	return []string{base + "replicas", base + "replicas_seen"}
}

// LiveReplicas lists the replicas whose last beat is within ttl (0: the
// default TTL), sorted by ID.
func (s *Store) LiveReplicas(ctx context.Context, ttl time.Duration) ([]Replica, error) {
	if ttl <= 0 {
		ttl = DefaultHeartbeatTTL
	}
	vals, err := liveScript.Run(ctx, s.client, s.replicaKeys(), ttl.Milliseconds()).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("listing replicas: %w", err)
	}
	out := make([]Replica, 0, len(vals)/3)
	for i := 0; i+2 < len(vals); i += 3 {
		var r Replica
		if vals[i+2] != "" {
			if err := json.Unmarshal([]byte(vals[i+2]), &r); err != nil {
				s.log.Warn("skipping an unreadable replica heartbeat", "id", vals[i], "err", err)
				continue
			}
		}
		r.ID = vals[i]
		seen, err := strconv.ParseFloat(vals[i+1], 64)
		if err != nil {
			return nil, fmt.Errorf("listing replicas: bad beat time %q", vals[i+1])
		}
		r.SeenAt = time.UnixMilli(int64(seen)).UTC()
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// HeartbeatOptions configure a Heartbeat.
type HeartbeatOptions struct {
	// ID names the replica; default NewReplicaID().
	ID string
	// Version is the gateway build, reported as is.
	Version string
	// Applied returns the state version the replica serves (the Syncer's
	// Version). Required.
	Applied func() uint64
	// Interval between beats; default DefaultHeartbeatInterval.
	Interval time.Duration
	// TTL is how long a replica counts as live after its last beat; default
	// DefaultHeartbeatTTL. Every replica of one store should use the same.
	TTL time.Duration
	// Timeout bounds each Redis call; default 500ms.
	Timeout time.Duration
	// Logger; nil discards.
	Logger *slog.Logger
}

// Heartbeat writes this replica's beat and keeps the number of live
// replicas it last saw, for callers that must not touch Redis for it (quota
// lease sizing).
type Heartbeat struct {
	store   *Store
	opts    HeartbeatOptions
	started time.Time
	live    atomic.Int64
	failing atomic.Bool
}

// NewReplicaID returns "<hostname>-<8 random hex digits>": the hostname
// tells an operator where it runs, the random part keeps restarts apart.
func NewReplicaID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "replica"
	}
	var b [4]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand panics rather than return an error)
	return host + "-" + hex.EncodeToString(b[:])
}

// NewHeartbeat returns this replica's heartbeat; Run beats.
func (s *Store) NewHeartbeat(opts HeartbeatOptions) (*Heartbeat, error) {
	if opts.Applied == nil {
		return nil, errors.New("store: a heartbeat needs HeartbeatOptions.Applied")
	}
	if opts.ID == "" {
		opts.ID = NewReplicaID()
	}
	if opts.Interval <= 0 {
		opts.Interval = DefaultHeartbeatInterval
	}
	if opts.TTL <= 0 {
		opts.TTL = DefaultHeartbeatTTL
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 500 * time.Millisecond
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	h := &Heartbeat{store: s, opts: opts, started: time.Now().UTC()}
	h.live.Store(1) // this one, until the first beat says more
	return h, nil
}

// ID is the replica's id.
func (h *Heartbeat) ID() string { return h.opts.ID }

// TTL is how long a beat keeps a replica live.
func (h *Heartbeat) TTL() time.Duration { return h.opts.TTL }

// ReplicaCount is the number of live replicas at the last beat, this one
// included; at least 1. It never calls Redis.
func (h *Heartbeat) ReplicaCount() int { return int(h.live.Load()) }

// Beat writes one beat and refreshes ReplicaCount.
func (h *Heartbeat) Beat(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, h.opts.Timeout)
	defer cancel()
	body, err := json.Marshal(Replica{ID: h.opts.ID, SnapshotVersion: h.opts.Applied(), StartedAt: h.started, Version: h.opts.Version})
	if err != nil {
		return fmt.Errorf("encoding heartbeat: %w", err)
	}
	if err := beatScript.Run(ctx, h.store.client, h.store.replicaKeys(), h.opts.ID, body, h.opts.TTL.Milliseconds()).Err(); err != nil {
		return fmt.Errorf("writing heartbeat: %w", err)
	}
	live, err := h.store.LiveReplicas(ctx, h.opts.TTL)
	if err != nil {
		return err
	}
	h.live.Store(int64(max(1, len(live))))
	return nil
}

// Run beats every Interval until ctx ends, then removes this replica's
// beat (a clean stop is not a live replica).
func (h *Heartbeat) Run(ctx context.Context) {
	t := time.NewTicker(h.opts.Interval)
	defer t.Stop()
	for {
		if err := h.Beat(ctx); err != nil && ctx.Err() == nil {
			// One warning per outage, not one a second.
			if !h.failing.Swap(true) {
				h.opts.Logger.Warn("replica heartbeat failing", "err", err)
			}
		} else if err == nil && h.failing.Swap(false) {
			h.opts.Logger.Info("replica heartbeat works again")
		}
		select {
		case <-ctx.Done():
			h.remove()
			return
		case <-t.C:
		}
	}
}

// remove deletes this replica's beat.
func (h *Heartbeat) remove() {
	ctx, cancel := context.WithTimeout(context.Background(), h.opts.Timeout)
	defer cancel()
	keys := h.store.replicaKeys()
	pipe := h.store.client.Pipeline()
	pipe.ZRem(ctx, keys[1], h.opts.ID)
	pipe.HDel(ctx, keys[0], h.opts.ID)
	if _, err := pipe.Exec(ctx); err != nil {
		h.opts.Logger.Warn("removing the replica heartbeat (it expires by itself)", "err", err)
	}
}
