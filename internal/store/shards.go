package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/redis/go-redis/v9"
)

// On Redis Cluster the state lives on one shard (its {state} hash tag) but the
// quota counters and the ledger are spread over all of them: a shard that
// restarts empty loses its part of every cap while the state looks intact. So
// each master also carries a marker key of its own, under a hash tag that maps
// to one of its slots; the {state} marker lists those tags. A listed marker
// that is gone means its shard lost its data, and the store is flagged wiped
// like when the state itself is lost.

// shardTagPrefix starts every shard marker's hash tag.
const shardTagPrefix = "shard:"

// maxShardTagTries bounds the search for a tag whose slot a master serves.
const maxShardTagTries = 1 << 16

func (s *Store) shardMarkerKey(tag string) string {
	return s.prefix + ":{" + tag + "}:marker"
}

// notify moves the version on and publishes it, so every replica's syncer
// loads the store again (after the marker was flagged wiped).
func (s *Store) notify(ctx context.Context) error {
	v, err := s.client.Incr(ctx, s.keys.version).Result()
	if err != nil {
		return fmt.Errorf("bumping the state version: %w", err)
	}
	return s.client.Publish(ctx, s.channel, formatVersion(uint64(v))).Err()
}

// ShardCheck is what CheckShards found.
type ShardCheck struct {
	// Missing lists the shard marker keys that are gone.
	Missing []string
	// Added counts the shard markers written for masters that had none.
	Added int
}

// addShardScript appends a tag to the {state} marker's shard list when the
// marker is still the one the caller read (same ID and epoch, not wiped).
// KEYS[1] the marker; ARGV[1] ID, ARGV[2] epoch, ARGV[3] tag.
var addShardScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if not cur then return 0 end
local m = cjson.decode(cur)
if m.id ~= ARGV[1] or (tonumber(m.epoch) or 0) ~= tonumber(ARGV[2]) or m.wiped then return 0 end
if type(m.shards) ~= 'table' then m.shards = {} end
for _, t in ipairs(m.shards) do if t == ARGV[3] then return 0 end end
table.insert(m.shards, ARGV[3])
redis.call('SET', KEYS[1], cjson.encode(m))
return 1
`)

// CheckShards verifies, on Redis Cluster, that every shard marker the store
// lists still exists, and gives every master without one a marker (a new
// shard after scaling out, or all of them after the store's first write or a
// restore). m is the store's current marker; on other deployments, or for a
// store without a marker or flagged wiped, it does nothing.
func (s *Store) CheckShards(ctx context.Context, m *Marker) (ShardCheck, error) {
	var res ShardCheck
	cc, ok := s.client.(*redis.ClusterClient)
	if !ok || m == nil || m.Wiped {
		return res, nil
	}
	if len(m.Shards) > 0 {
		keys := make([]string, len(m.Shards))
		for i, t := range m.Shards {
			keys[i] = s.shardMarkerKey(t)
		}
		cmds := make([]*redis.IntCmd, len(keys))
		_, err := cc.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, k := range keys {
				cmds[i] = p.Exists(ctx, k)
			}
			return nil
		})
		if err != nil {
			return res, fmt.Errorf("checking shard markers: %w", err)
		}
		for i, c := range cmds {
			if c.Val() == 0 {
				res.Missing = append(res.Missing, keys[i])
			}
		}
		if len(res.Missing) > 0 {
			return res, nil
		}
	}
	// Coverage: every master serves the slot of at least one listed tag.
	ranges, err := masterRanges(ctx, cc)
	if err != nil {
		return res, err
	}
	covered := map[string]bool{}
	slotOf := func(tag string) (int64, error) {
		return cc.ClusterKeySlot(ctx, s.shardMarkerKey(tag)).Result()
	}
	owner := func(slot int64) string {
		for _, r := range ranges {
			if r.start <= slot && slot <= r.end {
				return r.master
			}
		}
		return ""
	}
	for _, t := range m.Shards {
		sl, err := slotOf(t)
		if err != nil {
			return res, fmt.Errorf("locating shard marker: %w", err)
		}
		covered[owner(sl)] = true
	}
	masters := map[string]bool{}
	for _, r := range ranges {
		masters[r.master] = true
	}
	next := len(m.Shards)
	for i := 0; i < maxShardTagTries && len(covered) < len(masters); i++ {
		tag := shardTagPrefix + strconv.Itoa(next+i)
		if slices.Contains(m.Shards, tag) {
			continue
		}
		sl, err := slotOf(tag)
		if err != nil {
			return res, fmt.Errorf("locating shard marker: %w", err)
		}
		addr := owner(sl)
		if addr == "" || covered[addr] {
			continue
		}
		// The marker first, then the listing: a crash between leaves an
		// unlisted marker, which is harmless.
		if err := cc.Set(ctx, s.shardMarkerKey(tag), m.ID, 0).Err(); err != nil {
			return res, fmt.Errorf("writing shard marker: %w", err)
		}
		added, err := addShardScript.Run(ctx, cc, []string{s.keys.marker}, m.ID, m.Epoch, tag).Int()
		if err != nil {
			return res, fmt.Errorf("listing shard marker: %w", err)
		}
		if added == 1 {
			res.Added++
			m.Shards = append(m.Shards, tag)
		}
		covered[addr] = true
	}
	return res, nil
}

// slotRange is a range of hash slots and the master serving it.
type slotRange struct {
	start, end int64
	master     string
}

// masterRanges reads which master serves which slots: CLUSTER SHARDS (Redis
// 7), else CLUSTER SLOTS (Redis 6).
func masterRanges(ctx context.Context, cc *redis.ClusterClient) ([]slotRange, error) {
	var out []slotRange
	shards, err := cc.ClusterShards(ctx).Result()
	if err == nil {
		for _, sh := range shards {
			master := ""
			for _, n := range sh.Nodes {
				if n.Role == "master" {
					master = n.ID
				}
			}
			for _, r := range sh.Slots {
				out = append(out, slotRange{r.Start, r.End, master})
			}
		}
		return out, nil
	}
	//lint:ignore SA1019 the fallback for Redis 6, which has no CLUSTER SHARDS
	slots, serr := cc.ClusterSlots(ctx).Result()
	if serr != nil {
		return nil, fmt.Errorf("reading cluster slots: %w", errors.Join(err, serr))
	}
	for _, r := range slots {
		if len(r.Nodes) > 0 {
			out = append(out, slotRange{int64(r.Start), int64(r.End), r.Nodes[0].ID})
		}
	}
	return out, nil
}
