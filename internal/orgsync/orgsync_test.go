package orgsync

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/bedrock-gateway/gateway/internal/sim"
	"github.com/bedrock-gateway/gateway/internal/state"
)

func TestNewPlanKeepsUsedRecords(t *testing.T) {
	t.Parallel()
	cur := state.Organization{ID: "o-exampleorg1", Root: "r-ex12", HubAccount: "111111111111",
		Units: []state.Unit{
			{ID: "ou-ex12-outer001", Name: "outer"},
			{ID: "ou-ex12-inner001", Name: "inner", Parent: "ou-ex12-outer001"},
		},
		Accounts: []state.Account{
			{ID: "222222222222", Name: "used", Unit: "ou-ex12-inner001"},
			{ID: "333333333333", Name: "unused", Unit: "ou-ex12-inner001"},
		}}
	cur.Source = state.OrgSourceAWS // synced before
	snap := &Snapshot{Organization: state.Organization{ID: "o-exampleorg1", Root: "r-ex12", HubAccount: "111111111111"},
		States: map[string]string{}, Tagged: map[string]bool{}}
	inUse := func(id string) []string {
		if id == "222222222222" {
			return []string{"entitlement x share"}
		}
		return nil
	}
	ids := func(cs []Change) []string {
		var out []string
		for _, c := range cs {
			out = append(out, c.Op+" "+c.ID)
		}
		return out
	}
	for _, tc := range []struct {
		name        string
		prune       bool
		wantChanges []string
		wantKept    []string
	}{
		{"protected", false, []string{"remove 333333333333"},
			[]string{"keep 222222222222", "keep ou-ex12-inner001", "keep ou-ex12-outer001"}},
		{"prune", true, []string{"remove ou-ex12-outer001", "remove ou-ex12-inner001", "remove 222222222222", "remove 333333333333"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := NewPlan(cur, snap, PlanOptions{Prune: tc.prune, InUse: inUse})
			if got := ids(p.Changes); !slices.Equal(got, tc.wantChanges) {
				t.Errorf("changes %v, want %v", got, tc.wantChanges)
			}
			if got := ids(p.Kept); !slices.Equal(got, tc.wantKept) {
				t.Errorf("kept %v, want %v", got, tc.wantKept)
			}
			if err := (&state.State{Organization: p.Organization}).Validate(); err != nil {
				t.Errorf("planned organization invalid: %v", err)
			}
		})
	}
}

// TestReadRetriesThrottling: every call is throttled once, and the SDK's
// retryer still completes the walk.
func TestReadRetriesThrottling(t *testing.T) {
	t.Parallel()
	org := &sim.Organization{Organization: state.Organization{ID: "o-exampleorg1", Root: "r-ex12", HubAccount: "111111111111",
		Units:    []state.Unit{{ID: "ou-ex12-aaaaaaaa", Name: "a"}},
		Accounts: []state.Account{{ID: "222222222222", Name: "x", Unit: "ou-ex12-aaaaaaaa"}}},
		Tags: map[string]map[string]string{"222222222222": {"squad": "blue"}}}
	var mu sync.Mutex
	throttled := map[string]bool{}
	s := sim.New(sim.Options{Organization: org})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.Header.Get("X-Amz-Target") + r.Header.Get("Content-Length")
		mu.Lock()
		first := !throttled[key]
		throttled[key] = true
		mu.Unlock()
		if first {
			r.Header.Set("X-Sim-Fault", "throttle")
		}
		s.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	cfg := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("AKIAORGSYNCTEST00001", "secret", "")}
	snap, err := Read(t.Context(), Options{Client: NewClient(cfg, srv.URL), TeamTag: "squad", Concurrency: 1})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(snap.Organization.Accounts, state.Account{ID: "222222222222", Name: "x", Unit: "ou-ex12-aaaaaaaa", Team: "blue"}) {
		t.Fatalf("snapshot %+v", snap.Organization)
	}
	mu.Lock()
	defer mu.Unlock()
	calls := 0
	for _, n := range s.OrganizationsCalls() {
		calls += n
	}
	if len(throttled) < 5 || calls < 2*len(throttled) {
		t.Errorf("%d calls answered for %d distinct calls, want each throttled once and retried", calls, len(throttled))
	}
}

// TestSyncAccountStates: AWS's account State reaches the planned organization
// (suspended and closed lose access), is listed as a change and as inactive,
// and an account back to ACTIVE is active again.
func TestSyncAccountStates(t *testing.T) {
	t.Parallel()
	base := state.Organization{ID: "o-exampleorg1", Root: "r-ex12", HubAccount: "111111111111",
		Accounts: []state.Account{
			{ID: "222222222222", Name: "s"}, {ID: "333333333333", Name: "c"},
			{ID: "444444444444", Name: "p"}, {ID: "555555555555", Name: "back", State: state.AccountSuspended},
		}}
	org := &sim.Organization{Organization: base, States: map[string]string{
		"222222222222": sim.AccountSuspended, "333333333333": sim.AccountClosed, "444444444444": "PENDING_CLOSURE"}}
	srv := httptest.NewServer(sim.New(sim.Options{Organization: org}))
	t.Cleanup(srv.Close)
	cfg := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("AKIAORGSYNCTEST00001", "secret", "")}
	snap, err := Read(t.Context(), Options{Client: NewClient(cfg, srv.URL)})
	if err != nil {
		t.Fatal(err)
	}
	p := NewPlan(base, snap, PlanOptions{})
	want := map[string]string{"111111111111": "", "222222222222": state.AccountSuspended,
		"333333333333": state.AccountClosed, "444444444444": state.AccountClosed, "555555555555": ""}
	for _, a := range p.Organization.Accounts {
		if w, ok := want[a.ID]; !ok || a.State != w {
			t.Errorf("account %s state %q, want %q", a.ID, a.State, w)
		}
	}
	changes := map[string]string{}
	for _, c := range p.Changes {
		changes[c.ID] = c.Detail
	}
	for id, d := range map[string]string{"222222222222": "state active -> suspended", "333333333333": "state active -> closed",
		"555555555555": "state suspended -> active"} {
		if changes[id] != d {
			t.Errorf("change of %s = %q, want %q", id, changes[id], d)
		}
	}
	var inactive []string
	for _, c := range p.Inactive {
		inactive = append(inactive, c.ID)
	}
	if !slices.Equal(inactive, []string{"222222222222", "333333333333", "444444444444"}) {
		t.Errorf("inactive %v", inactive)
	}
	if err := (&state.State{Organization: p.Organization}).Validate(); err != nil {
		t.Errorf("planned organization invalid: %v", err)
	}
}
