package store

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/bedrock-gateway/gateway/internal/state"
	"github.com/bedrock-gateway/gateway/internal/testutil/redistest"
)

func TestRevocationsSurviveEveryWriter(t *testing.T) {
	t.Parallel()
	testRevocations(t, redistest.Start(t).Client(t), "gw")
}

// testRevocations: removing a credential tombstones its key in the same
// transaction, and no later write (one that drops the tombstones, or one that
// brings the credential back) loses a tombstone.
func testRevocations(t *testing.T, c redis.UniversalClient, prefix string) {
	ctx := t.Context()
	s := newStore(t, c, Options{Prefix: prefix, Now: (&clock{}).Now})
	sample := sampleState(1)
	if _, err := s.Replace(ctx, "test", sample); err != nil {
		t.Fatal(err)
	}
	sigv4, apiKey := sample.Credentials[0], sample.Credentials[1]
	v, err := s.Update(ctx, "admin:ops", "credential.revoke", func(st *state.State) error {
		st.Credentials = nil
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	members, err := c.SMembers(ctx, prefix+":{state}:revoked").Result()
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(members)
	want := []string{"access_key_id:" + sigv4.AccessKeyID, "api_key_sha256:" + apiKey.KeySHA256}
	if !slices.Equal(members, want) {
		t.Fatalf("revoked set %v, want %v", members, want)
	}
	entries, err := s.Audit(ctx, AuditQuery{Limit: 4})
	if err != nil {
		t.Fatal(err)
	}
	var targets []string
	for _, e := range entries {
		if e.Action != "credential.revoke" {
			t.Errorf("entry %+v is not of the revoke", e)
		}
		targets = append(targets, e.Target)
	}
	slices.Sort(targets)
	wantTargets := []string{"credential/" + sigv4.ID, "credential/" + apiKey.ID, "revoked/" + want[0], "revoked/" + want[1]}
	if !slices.Equal(targets, wantTargets) {
		t.Fatalf("audit targets %v, want %v", targets, wantTargets)
	}

	// A writer that drops the tombstones and brings the credentials back
	// stores the credentials (validation is the caller's job) but keeps the
	// tombstones, which authentication honours.
	v2, err := s.Update(ctx, "test", "apply", func(st *state.State) error {
		st.Revoked = state.Revoked{}
		st.Credentials = sample.Clone().Credentials
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if v2 != v+1 {
		t.Fatalf("version %d, want %d", v2, v+1)
	}
	got, _, err := s.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantRevoked := state.Revoked{AccessKeyIDs: []string{sigv4.AccessKeyID}, APIKeySHA256: []string{apiKey.KeySHA256}}
	if !equalRevoked(got.Revoked, wantRevoked) || len(got.Credentials) != 2 {
		t.Fatalf("after a re-add: revoked %+v, %d credentials", got.Revoked, len(got.Credentials))
	}
	// Replace with an empty state keeps them too.
	if _, err := s.Replace(ctx, "test", &state.State{}); err != nil {
		t.Fatal(err)
	}
	if got, _, err = s.Load(ctx); err != nil || !equalRevoked(got.Revoked, wantRevoked) {
		t.Fatalf("after replacing with nothing: %+v %v", got.Revoked, err)
	}
}

func equalRevoked(a, b state.Revoked) bool {
	return slices.Equal(a.AccessKeyIDs, b.AccessKeyIDs) && slices.Equal(a.APIKeySHA256, b.APIKeySHA256)
}

func TestMarker(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	c := redistest.Start(t).Client(t)
	s := newStore(t, c, Options{Now: (&clock{}).Now})
	if m, err := s.Marker(ctx); err != nil || m != nil {
		t.Fatalf("fresh store: marker %+v, %v", m, err)
	}
	if _, err := s.Replace(ctx, "test", sampleState(1)); err != nil {
		t.Fatal(err)
	}
	first, err := s.Marker(ctx)
	if err != nil || first == nil {
		t.Fatalf("after the first write: %+v, %v", first, err)
	}
	if len(first.ID) != 32 || first.InitializedAt.IsZero() || first.Wiped {
		t.Fatalf("marker %+v", first)
	}
	if _, err := s.Update(ctx, "test", "edit", func(st *state.State) error { st.Entitlements = nil; return nil }); err != nil {
		t.Fatal(err)
	}
	if m, err := s.Marker(ctx); err != nil || !reflect.DeepEqual(*m, *first) {
		t.Fatalf("a later write changed the marker: %+v -> %+v (%v)", first, m, err)
	}
}

func TestSeed(t *testing.T) {
	t.Parallel()
	seedWith := func(st *state.State) func(*state.State) error {
		return func(cur *state.State) error { *cur = *st.Clone(); return nil }
	}
	wiped, _ := json.Marshal(Marker{ID: "0123", Wiped: true})
	tests := []struct {
		name     string
		prepare  func(t *testing.T, s *Store, c redis.UniversalClient)
		wantSeed bool
	}{
		{"never initialized", func(*testing.T, *Store, redis.UniversalClient) {}, true},
		{"initialized", func(t *testing.T, s *Store, _ redis.UniversalClient) {
			if _, err := s.Replace(t.Context(), "test", sampleState(2)); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"initialized, then emptied", func(t *testing.T, s *Store, _ redis.UniversalClient) {
			if _, err := s.Replace(t.Context(), "test", &state.State{Organization: sampleState(0).Organization}); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Replace(t.Context(), "test", &state.State{}); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"wiped: only the marker written back", func(t *testing.T, _ *Store, c redis.UniversalClient) {
			if err := c.Set(t.Context(), "gw:{state}:marker", wiped, 0).Err(); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"state without a marker (written before markers)", func(t *testing.T, _ *Store, c redis.UniversalClient) {
			org, _ := json.Marshal(sampleState(0).Organization)
			if err := c.Set(t.Context(), "gw:{state}:org", org, 0).Err(); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"only tombstones left", func(t *testing.T, _ *Store, c redis.UniversalClient) {
			if err := c.SAdd(t.Context(), "gw:{state}:revoked", "access_key_id:GWEXAMPLE00000000009").Err(); err != nil {
				t.Fatal(err)
			}
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			c := redistest.Start(t).Client(t)
			s := newStore(t, c, Options{Now: (&clock{}).Now})
			tt.prepare(t, s, c)
			before, v0, err := s.Load(ctx)
			if err != nil {
				t.Fatal(err)
			}
			file := sampleState(1)
			seeded, v, err := s.Seed(ctx, "bootstrap", seedWith(file))
			if err != nil {
				t.Fatal(err)
			}
			if seeded != tt.wantSeed {
				t.Fatalf("seeded %v, want %v", seeded, tt.wantSeed)
			}
			after, v1, err := s.Load(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if !seeded {
				if v != v0 || v1 != v0 {
					t.Fatalf("not seeded, yet the version moved: %d -> %d (returned %d)", v0, v1, v)
				}
				assertStateEqual(t, after, before)
				return
			}
			if v != v1 || v1 != v0+1 {
				t.Fatalf("seeded as version %d, store at %d, was %d", v, v1, v0)
			}
			assertStateEqual(t, after, sampleState(1))
			if m, err := s.Marker(ctx); err != nil || m == nil {
				t.Fatalf("seeded without a marker: %v", err)
			}
		})
	}
}

// TestSeedRace: replicas starting together with the same bootstrap file seed
// the store exactly once.
func TestSeedRace(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	const replicas = 6
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		seeds  int
		errs   []error
		starts = make(chan struct{})
	)
	for range replicas {
		s := newStore(t, rs.Client(t), Options{})
		wg.Go(func() {
			<-starts
			seeded, _, err := s.Seed(context.Background(), "bootstrap", func(st *state.State) error {
				*st = *sampleState(2)
				return nil
			})
			mu.Lock()
			defer mu.Unlock()
			if seeded {
				seeds++
			}
			if err != nil {
				errs = append(errs, err)
			}
		})
	}
	close(starts)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if seeds != 1 {
		t.Fatalf("%d replicas seeded, want 1", seeds)
	}
	s := newStore(t, rs.Client(t), Options{})
	if v, err := s.Version(t.Context()); err != nil || v != 1 {
		t.Fatalf("version %d (%v), want 1", v, err)
	}
}
