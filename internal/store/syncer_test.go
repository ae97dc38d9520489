package store

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bedrock-gateway/gateway/internal/state"
	"github.com/bedrock-gateway/gateway/internal/testutil/redistest"
	"github.com/bedrock-gateway/gateway/internal/testutil/wait"
)

// countingHandler counts error records, so a test can wait for a logged failure.
type countingHandler struct {
	slog.Handler
	errors atomic.Int64
}

func (h *countingHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelError {
		h.errors.Add(1)
	}
	return nil
}

func (h *countingHandler) Enabled(context.Context, slog.Level) bool { return true }

// snapshotHolder stands in for the replica's atomically swapped snapshot.
type snapshotHolder struct {
	cur     atomic.Pointer[state.State]
	mu      sync.Mutex
	failFor map[uint64]bool
}

func (h *snapshotHolder) apply(st *state.State, v uint64) error {
	h.mu.Lock()
	fail := h.failFor[v]
	h.mu.Unlock()
	if fail {
		return errors.New("invalid state")
	}
	h.cur.Store(st)
	return nil
}

func runSyncer(t *testing.T, sy *Syncer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		sy.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(waitTimeout):
			t.Error("Syncer.Run did not return after its context ended")
		}
	})
}

func TestSyncer(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	c := srv.Client(t)
	ctx := t.Context()
	writer := newStore(t, c, Options{})
	v1, err := writer.Replace(ctx, "test", sampleState(2))
	if err != nil {
		t.Fatal(err)
	}

	logs := &countingHandler{}
	reader := newStore(t, srv.Client(t), Options{PollInterval: 20 * time.Millisecond})
	holder := &snapshotHolder{failFor: map[uint64]bool{}}
	sy := NewSyncer(SyncOptions{Store: reader, Apply: holder.apply, Logger: slog.New(logs)})
	if sy.Ready() || sy.Version() != 0 {
		t.Fatal("ready before Run")
	}
	runSyncer(t, sy)
	wctx, cancel := context.WithTimeout(ctx, waitTimeout)
	defer cancel()
	if err := sy.WaitVersion(wctx, v1); err != nil {
		t.Fatal(err)
	}
	if !sy.Ready() || sy.Version() != v1 {
		t.Fatalf("ready %v version %d", sy.Ready(), sy.Version())
	}
	assertStateEqual(t, holder.cur.Load(), sampleState(2))

	// A change elsewhere arrives.
	v2, err := writer.Update(ctx, "test", "edit", func(st *state.State) error {
		st.Entitlements = st.Entitlements[:1]
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := sy.WaitVersion(wctx, v2); err != nil {
		t.Fatal(err)
	}
	if n := len(holder.cur.Load().Entitlements); n != 1 {
		t.Fatalf("%d entitlements after revoke", n)
	}

	// A state that cannot be loaded: the last good snapshot stays, and the
	// load is retried (at the next poll) until it works, with no new version.
	if err := c.HSet(ctx, writer.keys.entitlements, "broken", "{not json").Err(); err != nil {
		t.Fatal(err)
	}
	v3, err := c.Incr(ctx, writer.keys.version).Uint64()
	if err != nil {
		t.Fatal(err)
	}
	wait.For(t, "a logged load failure", waitTimeout, func() bool { return logs.errors.Load() > 0 })
	if sy.Version() != v2 || !sy.Ready() || len(holder.cur.Load().Entitlements) != 1 {
		t.Fatalf("after a failed load: version %d ready %v", sy.Version(), sy.Ready())
	}
	if err := c.HDel(ctx, writer.keys.entitlements, "broken").Err(); err != nil {
		t.Fatal(err)
	}
	if err := sy.WaitVersion(wctx, v3); err != nil {
		t.Fatal(err)
	}

	// Apply rejecting a version: the snapshot stays until the next version.
	holder.mu.Lock()
	holder.failFor[v3+1] = true
	holder.mu.Unlock()
	errsBefore := logs.errors.Load()
	if _, err := writer.Update(ctx, "test", "edit", touch(0)); err != nil {
		t.Fatal(err)
	}
	wait.For(t, "a logged apply failure", waitTimeout, func() bool { return logs.errors.Load() > errsBefore })
	if sy.Version() != v3 {
		t.Fatalf("version %d after a rejected apply, want %d", sy.Version(), v3)
	}
	v5, err := writer.Update(ctx, "test", "edit", touch(1))
	if err != nil {
		t.Fatal(err)
	}
	if err := sy.WaitVersion(wctx, v5); err != nil {
		t.Fatal(err)
	}

	// WaitVersion gives up with its context.
	short, cancelShort := context.WithCancel(ctx)
	cancelShort()
	if err := sy.WaitVersion(short, v5+100); !errors.Is(err, context.Canceled) {
		t.Fatalf("WaitVersion on a cancelled context: %v", err)
	}
}

func TestNewSyncerPanicsWithoutApply(t *testing.T) {
	t.Parallel()
	defer func() {
		if recover() == nil {
			t.Fatal("no panic")
		}
	}()
	NewSyncer(SyncOptions{})
}
