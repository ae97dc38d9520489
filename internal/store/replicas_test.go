package store

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bedrock-gateway/gateway/internal/testutil/redistest"
	"github.com/bedrock-gateway/gateway/internal/testutil/wait"
)

func TestReplicaHeartbeats(t *testing.T) {
	t.Parallel()
	client := redistest.Start(t).Client(t)
	s, err := New(Options{Client: client})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	var applied atomic.Uint64
	applied.Store(7)
	a, err := s.NewHeartbeat(HeartbeatOptions{ID: "a", Version: "v1", Applied: applied.Load})
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.NewHeartbeat(HeartbeatOptions{ID: "b", Applied: func() uint64 { return 3 }})
	if err != nil {
		t.Fatal(err)
	}
	if a.ReplicaCount() != 1 {
		t.Fatalf("count before any beat = %d, want 1", a.ReplicaCount())
	}
	if err := a.Beat(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.Beat(ctx); err != nil {
		t.Fatal(err)
	}
	if b.ReplicaCount() != 2 {
		t.Fatalf("count after two beats = %d, want 2", b.ReplicaCount())
	}
	// A replica last seen long ago (its beat older than the TTL) is not live,
	// and the next beat prunes it.
	keys := s.replicaKeys()
	client.HSet(ctx, keys[0], "dead", `{"id":"dead","snapshot_version":1}`)
	redisNow, err := client.Time(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	client.ZAdd(ctx, keys[1], redisZ(redisNow.Add(-time.Minute), "dead"))

	live, err := s.LiveReplicas(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(live) != 2 || live[0].ID != "a" || live[1].ID != "b" {
		t.Fatalf("live = %+v, want a and b", live)
	}
	if live[0].SnapshotVersion != 7 || live[0].Version != "v1" || live[1].SnapshotVersion != 3 {
		t.Fatalf("live = %+v", live)
	}
	if live[0].StartedAt.IsZero() || live[0].SeenAt.IsZero() || live[0].SeenAt.Before(live[0].StartedAt.Add(-time.Minute)) {
		t.Fatalf("times of a: %+v", live[0])
	}

	applied.Store(8)
	if err := a.Beat(ctx); err != nil {
		t.Fatal(err)
	}
	if client.HExists(ctx, keys[0], "dead").Val() || client.ZScore(ctx, keys[1], "dead").Err() == nil {
		t.Fatal("a stale replica was not pruned")
	}
	live, _ = s.LiveReplicas(ctx, 0)
	if live[0].SnapshotVersion != 8 {
		t.Fatalf("a reports version %d after a beat, want 8", live[0].SnapshotVersion)
	}
	if ttl := client.PTTL(ctx, keys[0]).Val(); ttl <= 0 {
		t.Fatalf("replicas hash has no expiry (%v)", ttl)
	}

	// Run beats at once and removes the beat when it stops.
	c, err := s.NewHeartbeat(HeartbeatOptions{Applied: applied.Load, Interval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(c.ID(), "-") {
		t.Fatalf("generated id %q", c.ID())
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); c.Run(runCtx) }()
	wait.For(t, "the running heartbeat to count three replicas", 10*time.Second, func() bool { return c.ReplicaCount() == 3 })
	cancel()
	<-done
	live, _ = s.LiveReplicas(ctx, 0)
	if len(live) != 2 {
		t.Fatalf("after Run stopped, live = %+v, want a and b", live)
	}
	if _, err := s.NewHeartbeat(HeartbeatOptions{}); err == nil {
		t.Fatal("a heartbeat without Applied was accepted")
	}
}

func redisZ(at time.Time, member string) redis.Z {
	return redis.Z{Score: float64(at.UnixMilli()), Member: member}
}
