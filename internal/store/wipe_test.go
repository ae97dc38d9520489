package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bedrock-gateway/gateway/internal/state"
	"github.com/bedrock-gateway/gateway/internal/testutil/redistest"
	"github.com/bedrock-gateway/gateway/internal/testutil/wait"
)

// TestSyncerSurvivesWipe: Redis loses its data (FLUSHALL stands for a restart
// without persistence). The replica keeps its last good snapshot, reports the
// store wiped, puts the marker back flagged, the store refuses every change
// but an apply, a bootstrap does not seed it, and an apply of a backup
// restores it: the replica then takes the restored state although its
// version counter started again from zero.
func TestSyncerSurvivesWipe(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	c := srv.Client(t)
	ctx := t.Context()
	writer := newStore(t, c, Options{})
	var v uint64
	var err error
	for i := 0; i < 3; i++ { // a few versions, so a restore starts lower
		if v, err = writer.Replace(ctx, "test", sampleState(2+i)); err != nil {
			t.Fatal(err)
		}
	}
	reader := newStore(t, srv.Client(t), Options{PollInterval: 20 * time.Millisecond})
	holder := &snapshotHolder{failFor: map[uint64]bool{}}
	var wiped atomic.Bool
	sy := NewSyncer(SyncOptions{Store: reader, Apply: holder.apply, Logger: slog.New(slog.DiscardHandler),
		OnWiped: func(w bool) { wiped.Store(w) }})
	runSyncer(t, sy)
	wctx, cancel := context.WithTimeout(ctx, waitTimeout)
	defer cancel()
	if err := sy.WaitVersion(wctx, v); err != nil {
		t.Fatal(err)
	}
	before, err := writer.Marker(ctx)
	if err != nil || before == nil {
		t.Fatalf("marker %v %v", before, err)
	}

	if err := c.FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	// The version poll finds it (the version key is gone with the rest).
	wait.For(t, "the replica to report the wipe", waitTimeout, wiped.Load)
	if n := len(holder.cur.Load().Entitlements); n != 4 || sy.Version() != v {
		t.Fatalf("after the wipe the replica serves %d entitlements at version %d, want its last snapshot (4, %d)", n, sy.Version(), v)
	}
	m, err := writer.Marker(ctx)
	if err != nil || m == nil || !m.Wiped || m.ID != before.ID {
		t.Fatalf("marker after the wipe %+v %v, want the old identity flagged wiped", m, err)
	}

	// Nothing but an apply changes a wiped store, and no bootstrap seeds it.
	if _, err := writer.Update(ctx, "admin", "credential.revoke", touch(0)); !errors.Is(err, ErrWiped) {
		t.Fatalf("update of a wiped store: %v, want ErrWiped", err)
	}
	if seeded, _, err := writer.Seed(ctx, "bootstrap", func(st *state.State) error { *st = *sampleState(1); return nil }); err != nil || seeded {
		t.Fatalf("seeding a wiped store: seeded=%v err=%v", seeded, err)
	}

	// The operator restores from a backup.
	restored := sampleState(2)
	rv, err := writer.Replace(ctx, "admin:ops", restored)
	if err != nil {
		t.Fatal(err)
	}
	if rv >= v {
		t.Fatalf("restored version %d, expected a counter restarted below %d", rv, v)
	}
	wait.For(t, "the replica to take the restored state", waitTimeout, func() bool {
		return !wiped.Load() && len(holder.cur.Load().Entitlements) == 2
	})
	if m, _ := writer.Marker(ctx); m == nil || m.Wiped || m.Epoch != 1 || m.ID != before.ID {
		t.Fatalf("marker after the restore %+v, want the same identity, epoch 1, not wiped", m)
	}
	// And ordinary changes work again.
	if _, err := writer.Update(ctx, "admin", "edit", touch(0)); err != nil {
		t.Fatalf("update after the restore: %v", err)
	}
}

// A version that goes backwards under the same identity (Redis restored from
// an old RDB file) is never applied either.
func TestSyncerRefusesOlderVersion(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	c := srv.Client(t)
	ctx := t.Context()
	writer := newStore(t, c, Options{})
	v, err := writer.Replace(ctx, "test", sampleState(3))
	if err != nil {
		t.Fatal(err)
	}
	reader := newStore(t, srv.Client(t), Options{PollInterval: 20 * time.Millisecond})
	holder := &snapshotHolder{failFor: map[uint64]bool{}}
	var wiped atomic.Bool
	sy := NewSyncer(SyncOptions{Store: reader, Apply: holder.apply, OnWiped: func(w bool) { wiped.Store(w) }})
	runSyncer(t, sy)
	wctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := sy.WaitVersion(wctx, v); err != nil {
		t.Fatal(err)
	}
	// An "old snapshot": fewer entitlements, a lower version, the marker kept.
	if err := c.HDel(ctx, writer.keys.entitlements, sampleState(3).Entitlements[2].Name).Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.Set(ctx, writer.keys.version, v-1, 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.Publish(ctx, writer.channel, "0").Err(); err != nil {
		t.Fatal(err)
	}
	wait.For(t, "the replica to report the store wiped", waitTimeout, wiped.Load)
	if n := len(holder.cur.Load().Entitlements); n != 3 || sy.Version() != v {
		t.Fatalf("replica took the older state: %d entitlements, version %d", n, sy.Version())
	}
}

// TestShardWipeOnCluster: on Redis Cluster every master carries a marker; a
// shard that restarts empty (FLUSHALL on one master that does not hold the
// state) loses caps and ledger rows while the state looks intact. The store is
// flagged wiped all the same, and a restore re-marks every shard.
func TestShardWipeOnCluster(t *testing.T) {
	t.Parallel()
	cl := redistest.StartCluster(t, 3)
	c := cl.Client(t)
	ctx := t.Context()
	writer := newStore(t, c, Options{})
	if _, err := writer.Replace(ctx, "test", sampleState(2)); err != nil {
		t.Fatal(err)
	}
	reader := newStore(t, cl.Client(t), Options{PollInterval: 20 * time.Millisecond})
	holder := &snapshotHolder{failFor: map[uint64]bool{}}
	var wiped atomic.Bool
	sy := NewSyncer(SyncOptions{Store: reader, Apply: holder.apply, Logger: slog.New(slog.DiscardHandler),
		OnWiped: func(w bool) { wiped.Store(w) }})
	runSyncer(t, sy)
	shards := func() int {
		m, err := writer.Marker(ctx)
		if err != nil || m == nil {
			return 0
		}
		return len(m.Shards)
	}
	wait.For(t, "a marker on every master", waitTimeout, func() bool { return shards() == 3 })

	// FLUSHALL on a master that does not serve the {state} slot.
	stateSlot, err := c.ClusterKeySlot(ctx, writer.keys.marker).Result()
	if err != nil {
		t.Fatal(err)
	}
	layout, err := c.ClusterShards(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	victim := ""
	for _, sh := range layout {
		holdsState := false
		for _, r := range sh.Slots {
			if r.Start <= stateSlot && stateSlot <= r.End {
				holdsState = true
			}
		}
		for _, n := range sh.Nodes {
			if n.Role == "master" && !holdsState && victim == "" {
				victim = fmt.Sprintf("%s:%d", n.IP, n.Port)
			}
		}
	}
	node := redis.NewClient(&redis.Options{Addr: victim})
	defer node.Close()
	if err := node.FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	wait.For(t, "the replica to report the lost shard", waitTimeout, wiped.Load)
	if n := len(holder.cur.Load().Entitlements); n != 2 {
		t.Fatalf("replica serves %d entitlements after a shard wipe, want its snapshot's 2", n)
	}
	if _, err := writer.Update(ctx, "admin", "edit", touch(0)); !errors.Is(err, ErrWiped) {
		t.Fatalf("update after a shard wipe: %v, want ErrWiped", err)
	}

	// Restore: the store leaves the wiped state and every shard is marked again.
	if _, err := writer.Replace(ctx, "admin:ops", sampleState(2)); err != nil {
		t.Fatal(err)
	}
	wait.For(t, "the restore", waitTimeout, func() bool { return !wiped.Load() })
	wait.For(t, "every master marked again", waitTimeout, func() bool { return shards() == 3 })
}
