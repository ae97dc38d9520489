package billing

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	bedrockcp "github.com/aws/aws-sdk-go-v2/service/bedrock"
	cptypes "github.com/aws/aws-sdk-go-v2/service/bedrock/types"

	"github.com/bedrock-gateway/gateway/internal/authn"
	"github.com/bedrock-gateway/gateway/internal/sim"
	"github.com/bedrock-gateway/gateway/internal/state"
	"github.com/bedrock-gateway/gateway/internal/testutil/leakcheck"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

const (
	hubKey    = "AKIDBILLINGTEST00001"
	hubSecret = "billing-test-secret"
)

// testState is an organization of three teams; support is shared per team
// with two of them (one through an OU), marketing per entitlement.
const testState = `
organization:
  id: o-exampleorg1
  hub_account: "111111111111"
  units:
    - {id: ou-ab12-dev00001, name: Development}
    - {id: ou-ab12-ds000001, name: Data Science}
    - {id: ou-ab12-mkt00001, name: Marketing}
  accounts:
    - {id: "111111111111", name: hub}
    - {id: "222222222222", name: support-bot, unit: ou-ab12-dev00001}
    - {id: "223222222222", name: support-web, unit: ou-ab12-dev00001}
    - {id: "333333333333", name: ds-lab, unit: ou-ab12-ds000001, team: data-science}
    - {id: "444444444444", name: campaigns, unit: ou-ab12-mkt00001}
entitlements:
  - name: support
    model: anthropic.claude-3-5-haiku-20241022-v1:0
    billing: {profiles: per_team}
    shares: [{target: ou-ab12-dev00001}, {target: "333333333333"}]
  - name: marketing
    model: us.amazon.nova-lite-v1:0
    region: us-west-2
    billing: {profiles: per_entitlement}
    shares: [{target: ou-ab12-mkt00001}]
  - name: plain
    model: amazon.nova-lite-v1:0
    shares: [{target: o-exampleorg1}]
`

// env is a simulator serving the control plane, and a fake store.
type env struct {
	sim     *sim.Simulator
	clients Clients
	mu      sync.Mutex
	records []state.BillingProfile
	writes  int
}

func newEnv(t *testing.T) *env {
	t.Helper()
	lookup, err := authn.NewStaticLookup(&authn.Credential{ID: hubKey, Account: sim.HubAccount, Kind: authn.KindSigV4, Secret: hubSecret})
	if err != nil {
		t.Fatal(err)
	}
	v := authn.NewVerifier(authn.Options{})
	s := sim.New(sim.Options{Verify: func(r *http.Request, body []byte) error { return authn.VerifyStatic(v, r, body, lookup) }})
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	tr := srv.Client().Transport.(*http.Transport).Clone()
	t.Cleanup(tr.CloseIdleConnections)
	cfg := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider(hubKey, hubSecret, ""),
		HTTPClient: &http.Client{Transport: tr}, Retryer: func() aws.Retryer { return aws.NopRetryer{} }}
	return &env{sim: s, clients: NewClients(cfg, srv.URL)}
}

func (e *env) record(_ context.Context, rs []state.BillingProfile) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.records = slices.Clone(rs)
	e.writes++
	return nil
}

func (e *env) sync(t *testing.T, st *state.State, apply, prune bool) *Plan {
	t.Helper()
	e.mu.Lock()
	recorded := slices.Clone(e.records)
	e.mu.Unlock()
	plan, _, err := Sync(t.Context(), SyncOptions{Clients: e.clients, Region: "us-east-1", State: st, Recorded: recorded,
		Apply: apply, Prune: prune, Record: e.record})
	if err != nil {
		t.Fatal(err)
	}
	return plan
}

func parseState(t *testing.T, doc string) *state.State {
	t.Helper()
	st, err := state.Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	st.Normalize()
	if err := st.Validate(); err != nil {
		t.Fatal(err)
	}
	return st
}

func ops(cs []Change) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.Op + " " + c.Entitlement + "/" + c.Team
	}
	return out
}

func TestWanted(t *testing.T) {
	t.Parallel()
	wants, err := Wanted(parseState(t, testState), WantOptions{Region: "us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	want := []Want{
		{Entitlement: "marketing", Region: "us-west-2", Source: "arn:aws:bedrock:us-west-2:111111111111:inference-profile/us.amazon.nova-lite-v1:0"},
		{Entitlement: "support", Team: "Development", Region: "us-east-1", Source: "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-5-haiku-20241022-v1:0"},
		{Entitlement: "support", Team: "data-science", Region: "us-east-1", Source: "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-5-haiku-20241022-v1:0"},
	}
	if len(wants) != len(want) {
		t.Fatalf("wanted %+v", wants)
	}
	for i := range want {
		wants[i].BaseModel = ""
		if wants[i] != want[i] {
			t.Errorf("want %d: %+v, expected %+v", i, wants[i], want[i])
		}
	}
}

func TestSyncCreatesThenKeeps(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	st := parseState(t, testState)

	plan := e.sync(t, st, false, false)
	if got := ops(plan.Changes); !slices.Equal(got, []string{"create marketing/", "create support/Development", "create support/data-science"}) {
		t.Fatalf("plan %v", got)
	}
	if len(e.sim.Profiles()) != 0 || e.writes != 0 {
		t.Fatal("a plan without --apply changed something")
	}

	plan = e.sync(t, st, true, false)
	profiles := e.sim.Profiles()
	if len(profiles) != 3 || len(e.records) != 3 {
		t.Fatalf("%d profiles, %d records", len(profiles), len(e.records))
	}
	byARN := map[string]sim.Profile{}
	for _, p := range profiles {
		byARN[p.ARN] = p
	}
	for _, r := range e.records {
		p, ok := byARN[r.ARN]
		if !ok {
			t.Fatalf("record %+v names no profile", r)
		}
		if p.Tags[DefaultEntitlementTag] != r.Entitlement || p.Tags[DefaultTeamTag] != r.Team {
			t.Errorf("profile %s tags %v for %+v", p.Name, p.Tags, r)
		}
		if r.Entitlement == "marketing" && (p.Model != "amazon.nova-lite-v1:0" || !strings.Contains(p.ARN, ":us-west-2:")) {
			t.Errorf("marketing profile %+v", p)
		}
		if !strings.HasPrefix(p.Name, "bgw-") {
			t.Errorf("name %s", p.Name)
		}
	}
	for _, c := range plan.Changes {
		if c.ARN == "" {
			t.Errorf("applied create without ARN: %+v", c)
		}
	}

	// Idempotent: nothing to do, nothing written.
	writes := e.writes
	plan = e.sync(t, st, true, false)
	if len(plan.Changes) != 0 || len(plan.Kept) != 3 || e.writes != writes || len(e.sim.Profiles()) != 3 {
		t.Fatalf("second run: changes %v kept %d writes %d", ops(plan.Changes), len(plan.Kept), e.writes-writes)
	}
}

func TestSyncAdoptsAfterStoreLoss(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	st := parseState(t, testState)
	e.sync(t, st, true, false)
	before := slices.Clone(e.records)

	e.records = nil // the store lost its records
	plan := e.sync(t, st, true, false)
	if got := ops(plan.Changes); !slices.Equal(got, []string{"adopt marketing/", "adopt support/Development", "adopt support/data-science"}) {
		t.Fatalf("plan %v", got)
	}
	if len(e.sim.Profiles()) != 3 {
		t.Fatalf("duplicates created: %d profiles", len(e.sim.Profiles()))
	}
	if !slices.Equal(e.records, before) {
		t.Errorf("records %+v, want %+v", e.records, before)
	}
}

func TestSyncTagsAnUntaggedProfileOfItsName(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	st := parseState(t, testState)
	wants, _ := Wanted(st, WantOptions{Region: "us-east-1"})
	w := wants[1] // support/Development
	// A profile with the gateway's name but no tags (made by hand, or its
	// tags removed).
	c := e.clients("us-east-1")
	if _, err := c.CreateInferenceProfile(t.Context(), &bedrockcp.CreateInferenceProfileInput{
		InferenceProfileName: aws.String(ProfileName(w)),
		ModelSource:          &cptypes.InferenceProfileModelSourceMemberCopyFrom{Value: w.Source},
	}); err != nil {
		t.Fatal(err)
	}
	plan := e.sync(t, st, true, false)
	if got := ops(plan.Changes); !slices.Equal(got, []string{"create marketing/", "tag support/Development", "create support/data-science"}) {
		t.Fatalf("plan %v", got)
	}
	for _, p := range e.sim.Profiles() {
		if p.Name == ProfileName(w) && p.Tags[DefaultTeamTag] != "Development" {
			t.Errorf("not tagged: %+v", p)
		}
	}
	if len(e.sim.Profiles()) != 3 || len(e.records) != 3 {
		t.Errorf("%d profiles, %d records", len(e.sim.Profiles()), len(e.records))
	}
}

func TestSyncPrunes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.sync(t, parseState(t, testState), true, false)

	// Marketing stops using profiles; data science loses its share.
	changed := strings.Replace(testState, "billing: {profiles: per_entitlement}", "billing: {profiles: none}", 1)
	changed = strings.Replace(changed, `{target: ou-ab12-dev00001}, {target: "333333333333"}`, `{target: ou-ab12-dev00001}`, 1)
	st := parseState(t, changed)

	plan := e.sync(t, st, true, false)
	if got := ops(plan.Changes); !slices.Equal(got, []string{"forget marketing/", "forget support/data-science"}) {
		t.Fatalf("without prune: %v", got)
	}
	if len(plan.Unused) != 2 || len(e.sim.Profiles()) != 3 || len(e.records) != 1 {
		t.Fatalf("unused %v, %d profiles, %d records", ops(plan.Unused), len(e.sim.Profiles()), len(e.records))
	}

	plan = e.sync(t, st, true, true)
	if got := slices.Sorted(slices.Values(ops(plan.Changes))); !slices.Equal(got, []string{"delete marketing/", "delete support/data-science"}) {
		t.Fatalf("with prune: %v", got)
	}
	if ps := e.sim.Profiles(); len(ps) != 1 || ps[0].Tags[DefaultTeamTag] != "Development" {
		t.Fatalf("left %+v", ps)
	}
	if plan = e.sync(t, st, true, true); len(plan.Changes) != 0 {
		t.Fatalf("after prune: %v", ops(plan.Changes))
	}
}

func TestProfileName(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 63)
	tests := []Want{
		{Entitlement: "support", Team: "Data Science & Analytics", Source: "a"},
		{Entitlement: long, Team: long, Source: "a"},
		{Entitlement: "e", Source: "a"},
	}
	re := `^([0-9a-zA-Z:.][ _-]?)+$`
	for _, w := range tests {
		n := ProfileName(w)
		if len(n) > 64 || !profileNameOK(n) {
			t.Errorf("%+v: %q breaks %s or 64 characters", w, n, re)
		}
	}
	if ProfileName(Want{Entitlement: "e", Team: "t", Source: "a"}) == ProfileName(Want{Entitlement: "e", Team: "t", Source: "b"}) {
		t.Error("another source must give another name")
	}
	if TagValue("R&D") != "R_D" {
		t.Errorf("tag value %q", TagValue("R&D"))
	}
}

func profileNameOK(n string) bool {
	prevSep := true
	for _, r := range n {
		alnum := r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r == ':' || r == '.'
		switch {
		case alnum:
			prevSep = false
		case (r == ' ' || r == '_' || r == '-') && !prevSep:
			prevSep = true
		default:
			return false
		}
	}
	return n != ""
}

func TestTeamsOf(t *testing.T) {
	t.Parallel()
	o := &state.Organization{ID: "o-exampleorg1", Root: "r-ab12",
		Units: []state.Unit{{ID: "ou-ab12-top00001", Name: "Top"}, {ID: "ou-ab12-mid00001", Name: "Mid", Parent: "ou-ab12-top00001"}},
		Accounts: []state.Account{
			{ID: "111111111111", Name: "hub"},
			{ID: "222222222222", Name: "deep", Unit: "ou-ab12-mid00001"},
			{ID: "333333333333", Name: "top", Unit: "ou-ab12-top00001", Team: "named"},
		}}
	tests := []struct {
		targets []string
		want    []string
	}{
		{[]string{"o-exampleorg1"}, []string{"Mid", "named", "root"}},
		{[]string{"r-ab12"}, []string{"Mid", "named", "root"}},
		{[]string{"ou-ab12-top00001"}, []string{"Mid", "named"}},
		{[]string{"ou-ab12-mid00001"}, []string{"Mid"}},
		{[]string{"111111111111"}, []string{"root"}},
		{nil, []string{}},
	}
	for _, tc := range tests {
		e := &state.Entitlement{Name: "e"}
		for _, target := range tc.targets {
			e.Shares = append(e.Shares, state.Share{Target: target})
		}
		if got := teamsOf(o, e); !slices.Equal(got, tc.want) && len(got)+len(tc.want) > 0 {
			t.Errorf("%v: %v, want %v", tc.targets, got, tc.want)
		}
	}
}
