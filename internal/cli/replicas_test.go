package cli

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bedrock-gateway/gateway/internal/admin"
	"github.com/bedrock-gateway/gateway/internal/store"
)

// fakeReplicas serves the stored version 7 and two replicas; the second
// catches up to it after lagReads reads (never when negative).
type fakeReplicas struct {
	mu       sync.Mutex
	reads    int
	lagReads int
	none     bool
}

func (f *fakeReplicas) Version(context.Context) (uint64, error) { return 7, nil }

func (f *fakeReplicas) readCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reads
}

func (f *fakeReplicas) LiveReplicas(context.Context, time.Duration) ([]store.Replica, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	if f.none {
		return nil, nil
	}
	t := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	second := uint64(6)
	if f.lagReads >= 0 && f.reads > f.lagReads {
		second = 7
	}
	return []store.Replica{
		{ID: "gw-a", SnapshotVersion: 7, StartedAt: t, SeenAt: t.Add(time.Minute), Version: "abc123"},
		{ID: "gw-b", SnapshotVersion: second, StartedAt: t, SeenAt: t.Add(time.Minute), Version: "abc123"},
	}, nil
}

func TestReplicas(t *testing.T) {
	t.Parallel()
	withReplicas := func(f *fakeReplicas) func(*admin.Options) {
		return func(o *admin.Options) { o.Replicas = f }
	}
	t.Run("list", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, withReplicas(&fakeReplicas{lagReads: -1}))
		out := h.ok("replicas")
		wantContains(t, out, "REPLICA", "IN_FORCE", "gw-a", "gw-b")
		for _, line := range strings.Split(out, "\n") {
			switch {
			case strings.HasPrefix(line, "gw-a") && !strings.Contains(line, " yes "):
				t.Errorf("gw-a serves the stored version: %q", line)
			case strings.HasPrefix(line, "gw-b") && !strings.Contains(line, " no "):
				t.Errorf("gw-b lags: %q", line)
			}
		}
		var body replicasReply
		if err := json.Unmarshal([]byte(h.ok("replicas", "-o", "json")), &body); err != nil || body.StateVersion != 7 || len(body.Replicas) != 2 {
			t.Fatalf("json: %v %+v", err, body)
		}
	})
	t.Run("wait until in force", func(t *testing.T) {
		t.Parallel()
		f := &fakeReplicas{lagReads: 2}
		h := newHarness(t, withReplicas(f))
		out := h.ok("replicas", "--wait")
		if n := f.readCount(); strings.Contains(out, " no ") || n < 3 {
			t.Fatalf("after %d reads:\n%s", n, out)
		}
	})
	t.Run("wait times out naming the laggard", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, withReplicas(&fakeReplicas{lagReads: -1}))
		_, _, err := h.run("replicas", "--wait", "--timeout", "300ms")
		if err == nil || !strings.Contains(err.Error(), "gw-b (serves 6)") || strings.Contains(err.Error(), "gw-a") {
			t.Fatalf("err %v, want one naming gw-b only", err)
		}
	})
	t.Run("wait without replicas", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, withReplicas(&fakeReplicas{none: true}))
		_, _, err := h.run("replicas", "--wait", "--timeout", "300ms")
		if err == nil || !strings.Contains(err.Error(), "no live replica") {
			t.Fatalf("err %v", err)
		}
		wantContains(t, h.ok("replicas"), "no live replica (state version 7)")
	})
	t.Run("bad arguments", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, withReplicas(&fakeReplicas{}))
		for _, args := range [][]string{{"replicas", "extra"}, {"replicas", "--timeout", "0s"}} {
			if _, _, err := h.run(args...); err == nil {
				t.Errorf("%v accepted", args)
			}
		}
	})
}
