package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bedrock-gateway/gateway/internal/state"
	"github.com/bedrock-gateway/gateway/internal/testutil/redistest"
)

const testSecret = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY"

// clock is an injectable clock that advances one second per reading.
type clock struct{ n atomic.Int64 }

func (c *clock) Now() time.Time {
	return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(c.n.Add(1)) * time.Second)
}

func newStore(t testing.TB, c redis.UniversalClient, opts Options) *Store {
	t.Helper()
	opts.Client = c
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// sampleState returns a valid-looking state with n entitlements.
func sampleState(n int) *state.State {
	sum := sha256.Sum256([]byte("notebook-api-key"))
	keyHash := hex.EncodeToString(sum[:])
	exp := time.Date(2027, 6, 1, 0, 0, 0, 0, time.UTC)
	st := &state.State{
		Organization: state.Organization{
			ID:         "o-exampleorg1",
			Root:       "r-ab12",
			HubAccount: "111111111111",
			// Deliberately not sorted: organization order is kept as stored.
			Units: []state.Unit{
				{ID: "ou-ab12-mkt00001", Name: "Marketing", Parent: "r-ab12"},
				{ID: "ou-ab12-dev00001", Name: "Development"},
			},
			Accounts: []state.Account{
				{ID: "333333333333", Name: "ds-lab", Unit: "ou-ab12-dev00001", Team: "data-science"},
				{ID: "222222222222", Name: "support-bot", Unit: "ou-ab12-dev00001"},
			},
		},
		Entitlements: []state.Entitlement{},
		Credentials: []state.Credential{
			{ID: "GWEXAMPLE00000000001", Account: "222222222222", Kind: state.KindSigV4, Label: "support-bot",
				AccessKeyID: "GWEXAMPLE00000000001", Secret: testSecret, ExpiresAt: &exp,
				CreatedAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)},
			{ID: "key-" + keyHash[:16], Account: "333333333333", Kind: state.KindAPIKey, Label: "notebooks", KeySHA256: keyHash},
		},
	}
	for i := range n {
		st.Entitlements = append(st.Entitlements, sampleEntitlement(fmt.Sprintf("ent-%05d", i)))
	}
	return st
}

func sampleEntitlement(name string) state.Entitlement {
	return state.Entitlement{
		Name:      name,
		Model:     "anthropic.claude-3-5-haiku-20241022-v1:0",
		Scope:     []string{"o-exampleorg1"},
		Limits:    state.Limits{MonthlyTokens: 50000000, AccountMonthlyTokens: 10000000, RequestsPerMinute: 600, Count: state.CountTotal, AlertThresholds: []int{50, 80, 100}},
		State:     state.EntitlementActive,
		Shares:    []state.Share{{Target: "ou-ab12-dev00001"}, {Target: "333333333333", MonthlyTokens: 2000000}},
		CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		UpdatedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
	}
}

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func assertStateEqual(t testing.TB, got, want *state.State) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("state differs:\ngot  %s\nwant %s", mustJSON(t, got), mustJSON(t, want))
	}
}

func TestNewOptions(t *testing.T) {
	t.Parallel()
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // never dialled
	t.Cleanup(func() { _ = c.Close() })
	tests := []struct {
		name    string
		opts    Options
		wantErr bool
		wantKey string
	}{
		{name: "defaults", opts: Options{Client: c}, wantKey: "gw:{state}:version"},
		{name: "prefix", opts: Options{Client: c, Prefix: "tenant1"}, wantKey: "tenant1:{state}:version"},
		{name: "no client", opts: Options{}, wantErr: true},
		{name: "braces", opts: Options{Client: c, Prefix: "gw{x}"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := New(tt.opts)
			if tt.wantErr {
				if err == nil {
					t.Fatal("want an error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.keys.version != tt.wantKey || s.poll != DefaultPollInterval || s.max != DefaultAuditMax {
				t.Fatalf("got key %q poll %v max %d", s.keys.version, s.poll, s.max)
			}
		})
	}
}

func TestLoadEmpty(t *testing.T) {
	t.Parallel()
	testLoadEmpty(t, redistest.Start(t).Client(t), "gw")
}

func testLoadEmpty(t *testing.T, c redis.UniversalClient, prefix string) {
	s := newStore(t, c, Options{Prefix: prefix})
	st, v, err := s.Load(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if v != 0 {
		t.Fatalf("version %d, want 0", v)
	}
	assertStateEqual(t, st, &state.State{Entitlements: []state.Entitlement{}, Credentials: []state.Credential{}})
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	testRoundTrip(t, redistest.Start(t).Client(t), "gw")
}

func testRoundTrip(t *testing.T, c redis.UniversalClient, prefix string) {
	ctx := t.Context()
	s := newStore(t, c, Options{Prefix: prefix, Now: (&clock{}).Now})
	want := sampleState(3)
	// Given out of order: Load sorts entitlements by name.
	want.Entitlements[0], want.Entitlements[2] = want.Entitlements[2], want.Entitlements[0]
	v1, err := s.Replace(ctx, "test", want)
	if err != nil {
		t.Fatal(err)
	}
	if v1 != 1 {
		t.Fatalf("first version %d, want 1", v1)
	}
	got, v, err := s.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if v != v1 {
		t.Fatalf("Load version %d, want %d", v, v1)
	}
	sorted := sampleState(3)
	assertStateEqual(t, got, sorted)

	// Change one item, add one, remove one.
	v2, err := s.Update(ctx, "test", "edit", func(st *state.State) error {
		st.Entitlements[1].Description = "changed"
		st.Entitlements = append(st.Entitlements[:2], sampleEntitlement("zz-new"))
		st.Credentials = st.Credentials[1:]
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if v2 != v1+1 {
		t.Fatalf("version %d, want %d", v2, v1+1)
	}
	got, v, err = s.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sorted.Entitlements[1].Description = "changed"
	sorted.Entitlements = append(sorted.Entitlements[:2], sampleEntitlement("zz-new"))
	// The removed credential's key is tombstoned in the same change.
	sorted.Revoked.AccessKeyIDs = []string{sorted.Credentials[0].AccessKeyID}
	sorted.Credentials = sorted.Credentials[1:]
	assertStateEqual(t, got, sorted)
	if cur, err := s.Version(ctx); err != nil || cur != v2 || v != v2 {
		t.Fatalf("Version %d (%v), Load version %d, want %d", cur, err, v, v2)
	}
	entries, err := s.Audit(ctx, AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	// apply: org + 3 entitlements + 2 credentials; edit: one entitlement
	// changed, one removed, one added, one credential removed and its key
	// revoked.
	if len(entries) != 11 {
		t.Fatalf("%d audit entries, want 11: %s", len(entries), mustJSON(t, entries))
	}
}

func TestUpdateNoop(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	c := srv.Client(t)
	ctx := t.Context()
	s := newStore(t, c, Options{})
	v1, err := s.Replace(ctx, "test", sampleState(5))
	if err != nil {
		t.Fatal(err)
	}
	writes := func() map[string]string {
		t.Helper()
		info, err := c.Info(ctx, "commandstats").Result()
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for _, cmd := range []string{"set", "hset", "hdel", "del", "incr", "xadd", "publish"} {
			out[cmd] = statCalls(info, cmd)
		}
		return out
	}
	before := writes()
	tests := []struct {
		name string
		fn   func(st *state.State) error
	}{
		{"nothing", func(*state.State) error { return nil }},
		{"same values", func(st *state.State) error {
			st.Entitlements[0].Description = ""
			st.Organization.Units = append([]state.Unit(nil), st.Organization.Units...)
			return nil
		}},
		{"nil and empty lists alike", func(st *state.State) error {
			st.Entitlements[0].Scope = nil
			st.Entitlements[0].Scope = append(st.Entitlements[0].Scope, "o-exampleorg1")
			st.Entitlements[1].Operations = []string{}
			return nil
		}},
		{"replace with equal state", func(st *state.State) error {
			*st = *sampleState(5)
			return nil
		}},
	}
	for _, tt := range tests {
		v, err := s.Update(ctx, "test", "noop", tt.fn)
		if err != nil || v != v1 {
			t.Fatalf("%s: got %d, %v; want %d", tt.name, v, err, v1)
		}
	}
	if after := writes(); !reflect.DeepEqual(before, after) {
		t.Fatalf("no-op updates wrote: before %v after %v", before, after)
	}
}

// statCalls returns the calls= value of a command in INFO commandstats.
func statCalls(info, cmd string) string {
	for line := range strings.Lines(info) {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "cmdstat_"+cmd+":calls="); ok {
			for i := 0; i < len(rest); i++ {
				if rest[i] == ',' {
					return rest[:i]
				}
			}
			return rest
		}
	}
	return "0"
}

func TestUpdateErrors(t *testing.T) {
	t.Parallel()
	c := redistest.Start(t).Client(t)
	ctx := t.Context()
	s := newStore(t, c, Options{})
	v1, err := s.Replace(ctx, "test", sampleState(2))
	if err != nil {
		t.Fatal(err)
	}
	type validationError struct{ error }
	tests := []struct {
		name  string
		fn    func(st *state.State) error
		check func(error) bool
	}{
		{"fn error returned unchanged", func(st *state.State) error {
			st.Entitlements = nil // must not be written
			return validationError{errors.New("bad")}
		}, func(err error) bool { var v validationError; return errors.As(err, &v) }},
		{"entitlement without name", func(st *state.State) error {
			st.Entitlements[0].Name = ""
			return nil
		}, func(err error) bool { return errors.Is(err, ErrInvalid) }},
		{"duplicate entitlement", func(st *state.State) error {
			st.Entitlements[1].Name = st.Entitlements[0].Name
			return nil
		}, func(err error) bool { return errors.Is(err, ErrInvalid) }},
		{"credential without ID", func(st *state.State) error {
			st.Credentials[0].ID = ""
			return nil
		}, func(err error) bool { return errors.Is(err, ErrInvalid) }},
		{"duplicate credential", func(st *state.State) error {
			st.Credentials[1].ID = st.Credentials[0].ID
			return nil
		}, func(err error) bool { return errors.Is(err, ErrInvalid) }},
		{"plaintext API key", func(st *state.State) error {
			st.Credentials[1].Key = "notebook-api-key"
			return nil
		}, func(err error) bool { return errors.Is(err, ErrInvalid) }},
	}
	for _, tt := range tests {
		_, err := s.Update(ctx, "test", "bad", tt.fn)
		if err == nil || !tt.check(err) {
			t.Errorf("%s: got %v", tt.name, err)
		}
	}
	if v, err := s.Version(ctx); err != nil || v != v1 {
		t.Fatalf("version %d (%v) after failed updates, want %d", v, err, v1)
	}
	if _, err := s.Replace(ctx, "test", nil); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Replace(nil): %v", err)
	}
}

func TestConcurrentWriters(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	testConcurrentWriters(t, srv.Client(t), srv.Client(t), "gw")
}

// testConcurrentWriters runs two writers (two clients, as two replicas) that
// both increment a counter kept in one entitlement, so they conflict all the
// time: every increment must land and every version must be distinct.
func testConcurrentWriters(t *testing.T, c1, c2 redis.UniversalClient, prefix string) {
	ctx := t.Context()
	stores := []*Store{newStore(t, c1, Options{Prefix: prefix}), newStore(t, c2, Options{Prefix: prefix})}
	v0, err := stores[0].Replace(ctx, "test", sampleState(1))
	if err != nil {
		t.Fatal(err)
	}
	const perWriter = 20
	var (
		mu       sync.Mutex
		versions = map[uint64]bool{}
		wg       sync.WaitGroup
	)
	for w, s := range stores {
		wg.Go(func() {
			for i := range perWriter {
				v, err := s.Update(ctx, fmt.Sprintf("writer-%d", w), "inc", func(st *state.State) error {
					n, _ := strconv.Atoi(st.Entitlements[0].Description)
					st.Entitlements[0].Description = strconv.Itoa(n + 1)
					st.Entitlements = append(st.Entitlements, sampleEntitlement(fmt.Sprintf("w%d-%03d", w, i)))
					return nil
				})
				if err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
				mu.Lock()
				if versions[v] {
					t.Errorf("version %d returned twice", v)
				}
				versions[v] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	st, v, err := stores[1].Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := v0 + 2*perWriter; v != want {
		t.Fatalf("version %d, want %d", v, want)
	}
	if got := st.Entitlements[0].Description; got != strconv.Itoa(2*perWriter) {
		t.Fatalf("counter %s, want %d (lost updates)", got, 2*perWriter)
	}
	if len(st.Entitlements) != 1+2*perWriter {
		t.Fatalf("%d entitlements, want %d", len(st.Entitlements), 1+2*perWriter)
	}
}

func TestDiffWritesOnlyChanges(t *testing.T) {
	t.Parallel()
	st := sampleState(1000)
	before, err := encodeState(st)
	if err != nil {
		t.Fatal(err)
	}
	st.Entitlements[500].Shares = st.Entitlements[500].Shares[:1]
	after, err := encodeState(st)
	if err != nil {
		t.Fatal(err)
	}
	changes := diff(before, after)
	if len(changes) != 1 || changes[0].target() != "entitlement/ent-00500" {
		t.Fatalf("changes: %+v", changes)
	}
}

func TestUpdateContextCancelled(t *testing.T) {
	t.Parallel()
	c := redistest.Start(t).Client(t)
	s := newStore(t, c, Options{})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := s.Update(ctx, "test", "x", func(*state.State) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v", err)
	}
}

// TestLoadSharesNothing: Load reuses decoded items between calls, so a caller
// changing its state must not change what the next Load returns.
func TestLoadSharesNothing(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := newStore(t, redistest.Start(t).Client(t), Options{})
	if _, err := s.Replace(ctx, "test", sampleState(2)); err != nil {
		t.Fatal(err)
	}
	first, _, err := s.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	first.Entitlements[0].Scope[0] = "changed"
	first.Entitlements[0].Shares[0].Target = "changed"
	first.Entitlements[1].Limits.AlertThresholds[0] = 1
	*first.Credentials[0].ExpiresAt = time.Time{}
	first.Organization.Units[0].Name = "changed"
	second, _, err := s.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	assertStateEqual(t, second, sampleState(2))
}
