package admin

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/bedrock-gateway/gateway/internal/store"
)

type fakeReplicas struct {
	live    []store.Replica
	version uint64
	err     error
}

func (f *fakeReplicas) LiveReplicas(context.Context, time.Duration) ([]store.Replica, error) {
	return f.live, f.err
}

func (f *fakeReplicas) Version(context.Context) (uint64, error) { return f.version, nil }

func TestReplicasAPI(t *testing.T) {
	t.Parallel()
	seen := time.Date(2026, 11, 30, 12, 0, 1, 0, time.UTC)
	started := seen.Add(-time.Hour)
	tests := []struct {
		name     string
		replicas Replicas
		status   int
		want     replicasBody
	}{
		{"not wired", nil, http.StatusNotImplemented, replicasBody{}},
		{"none live", &fakeReplicas{version: 4}, http.StatusOK, replicasBody{Replicas: []replica{}, StateVersion: 4}},
		{"two live", &fakeReplicas{version: 9, live: []store.Replica{
			{ID: "a", SnapshotVersion: 9, StartedAt: started, SeenAt: seen, Version: "v1"},
			{ID: "b", SnapshotVersion: 8, StartedAt: started, SeenAt: seen},
		}}, http.StatusOK, replicasBody{StateVersion: 9, Replicas: []replica{
			{ID: "a", SnapshotVersion: 9, StartedAt: started, SeenAt: seen, Version: "v1"},
			{ID: "b", SnapshotVersion: 8, StartedAt: started, SeenAt: seen},
		}}},
		{"store failing", &fakeReplicas{err: errors.New("boom")}, http.StatusInternalServerError, replicasBody{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, seedState(t), func(o *Options) { o.Replicas = tt.replicas })
			r := e.do(http.MethodGet, "/admin/v1/replicas", "", "")
			if r.status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.status, tt.status, r.body)
			}
			if tt.status != http.StatusOK {
				return
			}
			var got replicasBody
			r.decode(t, &got)
			if got.StateVersion != tt.want.StateVersion || len(got.Replicas) != len(tt.want.Replicas) || got.Replicas == nil {
				t.Fatalf("body %s, want %+v", r.body, tt.want)
			}
			for i := range got.Replicas {
				g, w := got.Replicas[i], tt.want.Replicas[i]
				if g.ID != w.ID || g.SnapshotVersion != w.SnapshotVersion || !g.SeenAt.Equal(w.SeenAt) || !g.StartedAt.Equal(w.StartedAt) || g.Version != w.Version {
					t.Fatalf("replica %d = %+v, want %+v", i, g, w)
				}
			}
		})
	}
}
