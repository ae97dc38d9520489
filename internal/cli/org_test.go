package cli

import (
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bedrock-gateway/gateway/internal/sim"
	"github.com/bedrock-gateway/gateway/internal/state"
)

const (
	orgKey    = "AKIAORGSYNCTEST00001"
	orgSecret = "org-sync-test-secret"
)

// orgSim serves org through the simulator's Organizations API, checking every
// call's SigV4 signature against the test key, and points h's org sync at it.
func orgSim(t *testing.T, h *harness, org *sim.Organization) *sim.Simulator {
	t.Helper()
	s := sim.New(sim.Options{
		Organization: org,
		VerifyOrganizations: sim.NewSigV4Check(sim.SigV4Check{Service: "organizations", Region: "us-east-1",
			Secrets: map[string]string{orgKey: orgSecret}}),
	})
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	h.vars["AWS_ACCESS_KEY_ID"] = orgKey
	h.vars["AWS_SECRET_ACCESS_KEY"] = orgSecret
	h.vars["ORG_ENDPOINT"] = srv.URL
	return s
}

func (h *harness) sync(args ...string) string {
	h.t.Helper()
	return h.ok(append([]string{"org", "sync", "--region", "us-east-1", "--organizations-endpoint", h.vars["ORG_ENDPOINT"]}, args...)...)
}

// syncOrg: root > platform > ml; root > retail; one account at the root.
func syncOrg() *sim.Organization {
	return &sim.Organization{
		Organization: state.Organization{
			ID: "o-exampleorg1", Root: "r-ex12", HubAccount: "111111111111",
			Units: []state.Unit{
				{ID: "ou-ex12-platform", Name: "platform"},
				{ID: "ou-ex12-mlteam01", Name: "ml", Parent: "ou-ex12-platform"},
				{ID: "ou-ex12-retail01", Name: "retail", Parent: "r-ex12"},
			},
			Accounts: []state.Account{
				{ID: "222222222222", Name: "ml-prod", Unit: "ou-ex12-mlteam01"},
				{ID: "333333333333", Name: "ml-dev", Unit: "ou-ex12-mlteam01"},
				{ID: "444444444444", Name: "shop", Unit: "ou-ex12-retail01"},
				{ID: "555555555555", Name: "sandbox"},
				{ID: "666666666666", Name: "scratch", Unit: "ou-ex12-retail01"},
			},
		},
		HubName: "hub",
		States:  map[string]string{"555555555555": sim.AccountSuspended},
		Tags: map[string]map[string]string{
			"222222222222": {"team": "ml-research", "cost-center": "42"},
			"444444444444": {"owner": "shop-owner"},
		},
	}
}

func accountsByID(o state.Organization) map[string]state.Account {
	m := map[string]state.Account{}
	for _, a := range o.Accounts {
		m[a.ID] = a
	}
	return m
}

func unitsByID(o state.Organization) map[string]state.Unit {
	m := map[string]state.Unit{}
	for _, u := range o.Units {
		m[u.ID] = u
	}
	return m
}

func TestOrgSync(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	s := orgSim(t, h, syncOrg())

	// A dry run against an empty gateway shows everything and writes nothing.
	out := h.sync()
	wantContains(t, out, "~ organization o-exampleorg1: id (none) -> o-exampleorg1",
		"+ ou ou-ex12-mlteam01: ml under platform (ou-ex12-platform)",
		"+ account 222222222222: ml-prod in ml (ou-ex12-mlteam01), team ml-research",
		"+ account 111111111111: hub in root",
		"! account 555555555555: sandbox: SUSPENDED",
		"denies them every call",
		"not applied (run with --apply)")
	if o := h.store.state().Organization; o.ID != "" {
		t.Fatalf("dry run wrote %+v", o)
	}

	wantContains(t, h.sync("--apply"), "applied", "organization o-exampleorg1: 3 OUs, 6 accounts")
	got := h.store.state().Organization
	if got.ID != "o-exampleorg1" || got.Root != "r-ex12" || got.HubAccount != "111111111111" {
		t.Fatalf("organization %+v", got)
	}
	accts := accountsByID(got)
	for id, want := range map[string]state.Account{
		"111111111111": {ID: "111111111111", Name: "hub"},
		"222222222222": {ID: "222222222222", Name: "ml-prod", Unit: "ou-ex12-mlteam01", Team: "ml-research"},
		"444444444444": {ID: "444444444444", Name: "shop", Unit: "ou-ex12-retail01"},
		"555555555555": {ID: "555555555555", Name: "sandbox", State: state.AccountSuspended},
	} {
		if accts[id] != want {
			t.Errorf("account %s = %+v, want %+v", id, accts[id], want)
		}
	}
	if u := unitsByID(got)["ou-ex12-retail01"]; u.Parent != "" || u.Name != "retail" {
		t.Errorf("retail OU %+v", u)
	}
	wantContains(t, h.sync(), "no changes")
	if got := h.store.state().Organization.Source; got != state.OrgSourceAWS {
		t.Fatalf("organization source %q after sync, want %s", got, state.OrgSourceAWS)
	}

	// Once sync wrote the organization, an apply of a file with an
	// organization section warns (the file still replaces it; a dry run
	// shows it); a file without one leaves the organization alone quietly.
	withOrg := filepath.Join(t.TempDir(), "with-org.yaml")
	if err := os.WriteFile(withOrg, []byte("organization:\n  id: o-exampleorg1\n  hub_account: \"111111111111\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, errOut, err := h.run("apply", "-f", withOrg, "--dry-run")
	if err != nil {
		t.Fatal(err)
	}
	wantContains(t, errOut, "warning: the organization is synced from AWS Organizations")
	noOrg := filepath.Join(t.TempDir(), "no-org.yaml")
	if err := os.WriteFile(noOrg, []byte("entitlements: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, errOut, err := h.run("apply", "-f", noOrg); err != nil || errOut != "" {
		t.Fatalf("apply without an organization: %v, stderr %q", err, errOut)
	}
	if got := h.store.state().Organization; got.Source != state.OrgSourceAWS || len(got.Accounts) != 6 {
		t.Fatalf("apply without an organization section changed it: %+v", got)
	}

	// A team typed into the gateway survives when AWS has no tag; the shop
	// account gets a share and 666 a credential, so neither may vanish.
	if _, err := h.store.Update(t.Context(), "test", "edit", func(st *state.State) error {
		for i := range st.Organization.Accounts {
			if a := &st.Organization.Accounts[i]; a.ID == "333333333333" {
				a.Team = "typed-by-hand"
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	h.ok("entitlements", "create", "shop-llm", "--model", "amazon.nova-pro-v1:0")
	h.ok("shares", "add", "shop-llm", "444444444444")
	h.ok("credentials", "issue", "--account", "666666666666", "--kind", "api_key", "--label", "scratch")

	// Moves, renames, a new OU with a new account, a tag change, and three
	// accounts gone from AWS: two still in use, one not.
	next := syncOrg()
	next.Units = append(next.Units, state.Unit{ID: "ou-ex12-newunit1", Name: "data", Parent: "ou-ex12-platform"})
	next.Units[2].Name = "commerce" // retail renamed
	next.Units[1].Parent = ""       // ml moves to the root
	next.Accounts = []state.Account{
		{ID: "222222222222", Name: "ml-prod", Unit: "ou-ex12-retail01"},   // moved
		{ID: "333333333333", Name: "ml-dev-2", Unit: "ou-ex12-mlteam01"},  // renamed, untagged
		{ID: "777777777777", Name: "warehouse", Unit: "ou-ex12-newunit1"}, // new
	}
	next.States = nil
	next.Tags = map[string]map[string]string{"222222222222": {"team": "ml-platform"}, "777777777777": {"team": "data"}}
	if err := s.SetOrganization(next); err != nil {
		t.Fatal(err)
	}
	out = h.sync("--apply")
	wantContains(t, out,
		"~ ou ou-ex12-mlteam01: moved from platform (ou-ex12-platform) to root",
		"~ ou ou-ex12-retail01: renamed retail -> commerce",
		"+ ou ou-ex12-newunit1: data under platform (ou-ex12-platform)",
		"~ account 222222222222: moved from ml (ou-ex12-mlteam01) to commerce (ou-ex12-retail01); team ml-research -> ml-platform",
		"~ account 333333333333: renamed ml-dev -> ml-dev-2\n",
		"+ account 777777777777: warehouse in data (ou-ex12-newunit1), team data",
		"- account 555555555555: sandbox",
		"= account 444444444444: shop: gone from AWS Organizations but used by entitlement shop-llm share",
		"= account 666666666666: scratch: gone from AWS Organizations but used by credential",
		"--apply --prune",
		"applied")
	if strings.Contains(out, "- account 444444444444") || strings.Contains(out, "- account 666666666666") {
		t.Fatalf("removes a used account:\n%s", out)
	}
	st := h.store.state()
	accts = accountsByID(st.Organization)
	if _, ok := accts["555555555555"]; ok {
		t.Error("the unused account gone from AWS is still there")
	}
	if a := accts["333333333333"]; a.Team != "typed-by-hand" || a.Name != "ml-dev-2" {
		t.Errorf("untagged account %+v: the typed team must survive", a)
	}
	if a := accts["444444444444"]; a.Unit != "ou-ex12-retail01" {
		t.Errorf("kept account %+v", a)
	}
	if len(st.Entitlements[0].Shares) != 1 || len(st.Credentials) != 1 {
		t.Fatalf("shares %+v, credentials %+v", st.Entitlements[0].Shares, st.Credentials)
	}

	// JSON output for programs.
	var res struct {
		Changes []map[string]string `json:"changes"`
		Kept    []map[string]string `json:"kept"`
		Applied bool                `json:"applied"`
	}
	if err := json.Unmarshal([]byte(h.sync("-o", "json")), &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Changes) != 0 || len(res.Kept) != 2 || res.Applied {
		t.Fatalf("json %+v", res)
	}

	// --prune removes them with their share and credential.
	out = h.sync("--apply", "--prune")
	wantContains(t, out, "- account 444444444444: shop", "- account 666666666666: scratch", "applied")
	st = h.store.state()
	if _, ok := accountsByID(st.Organization)["444444444444"]; ok || len(st.Entitlements[0].Shares) != 0 || len(st.Credentials) != 0 {
		t.Fatalf("after prune: %+v", st)
	}
}

func TestOrgSyncLarge(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	// The size: 300 OUs nested 5 deep (10, 30, 60, 90, 110 per
	// level) and 5,000 accounts, every third one tagged.
	org := &sim.Organization{
		Organization: state.Organization{ID: "o-bigorg0001", Root: "r-big1", HubAccount: "100000000000"},
		Tags:         map[string]map[string]string{},
	}
	prev := []string{""}
	var all []string
	for level, n := range []int{10, 30, 60, 90, 110} {
		var cur []string
		for j := range n {
			id := fmt.Sprintf("ou-big1-l%d%06d", level+1, j)
			org.Units = append(org.Units, state.Unit{ID: id, Name: fmt.Sprintf("unit-%d-%d", level+1, j), Parent: prev[j%len(prev)]})
			cur = append(cur, id)
		}
		all = append(all, cur...)
		prev = cur
	}
	for k := range 5000 {
		id := fmt.Sprintf("%012d", 200000000000+k)
		org.Accounts = append(org.Accounts, state.Account{ID: id, Name: fmt.Sprint("account-", k), Unit: all[k%len(all)]})
		if k%3 == 0 {
			org.Tags[id] = map[string]string{"team": fmt.Sprint("team-", k%7)}
		}
	}
	s := orgSim(t, h, org)
	start := time.Now()
	wantContains(t, h.sync("--apply"), "organization o-bigorg0001: 300 OUs, 5001 accounts; applied")
	t.Logf("read, planned and applied 300 OUs and 5,001 accounts in %v", time.Since(start))
	got := h.store.state().Organization
	units := unitsByID(got)
	for _, u := range org.Units {
		if units[u.ID] != u {
			t.Fatalf("unit %+v, want %+v", units[u.ID], u)
		}
	}
	accts := accountsByID(got)
	for k, a := range org.Accounts {
		want := a
		if k%3 == 0 {
			want.Team = fmt.Sprint("team-", k%7)
		}
		if accts[a.ID] != want {
			t.Fatalf("account %+v, want %+v", accts[a.ID], want)
		}
	}
	if n := s.OrganizationsCalls()["ListTagsForResource"]; n != 5001 {
		t.Errorf("%d ListTagsForResource calls, want one per account", n)
	}
	wantContains(t, h.sync(), "no changes")
	if !slices.ContainsFunc(got.Accounts, func(a state.Account) bool { return a.ID == "100000000000" && a.Unit == "" }) {
		t.Error("the hub account is not listed under the root")
	}
}
