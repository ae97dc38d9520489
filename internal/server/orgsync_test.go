package server

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/smithy-go"

	"github.com/bedrock-gateway/gateway/internal/config"
	"github.com/bedrock-gateway/gateway/internal/orgsync"
	"github.com/bedrock-gateway/gateway/internal/sim"
	"github.com/bedrock-gateway/gateway/internal/state"
	"github.com/bedrock-gateway/gateway/internal/store"
	"github.com/bedrock-gateway/gateway/internal/testutil/redistest"
	"github.com/bedrock-gateway/gateway/internal/testutil/wait"
)

// orgSyncCount reads gateway_org_sync_total{result} of one replica.
func orgSyncCount(t *testing.T, g *gateway, result string) float64 {
	t.Helper()
	mfs, err := g.Metrics().Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "gateway_org_sync_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if label(m, "result") == result {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("gateway_org_sync_total{result=%q} not exported", result)
	return 0
}

func orgSyncLastSuccess(t *testing.T, g *gateway) float64 {
	t.Helper()
	mfs, err := g.Metrics().Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "gateway_org_sync_last_success_timestamp_seconds" {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatal("gateway_org_sync_last_success_timestamp_seconds not exported")
	return 0
}

// TestPeriodicOrgSync: two replicas with --org-sync-interval against an
// Organizations simulator. While one replica's sync is held inside AWS, the
// other finds the lock taken (skipped_locked) and starts no sync of its own;
// then the organization ends up as AWS has it (a new account, a rename, a
// suspension that denies the account's calls at once), audited as org-sync,
// with the metrics counting.
func TestPeriodicOrgSync(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	const stateYAML = baseState + `entitlements:
  - name: chat
    model: ` + haiku + `
    shares: [{target: o-testorg0001}]
`
	file, err := state.Parse([]byte(stateYAML))
	if err != nil {
		t.Fatal(err)
	}
	aws := file.Organization
	aws.Accounts = append(aws.Accounts, state.Account{ID: "555555555555", Name: "new-one", Unit: "ou-ab12-mkt00001"})
	for i := range aws.Accounts {
		if aws.Accounts[i].ID == "333333333333" {
			aws.Accounts[i].Name = "ds-lab-renamed"
		}
	}
	org := &sim.Organization{Organization: aws, States: map[string]string{"444444444444": sim.AccountSuspended},
		Tags: map[string]map[string]string{"555555555555": {"team": "newcomers"}}}
	up := newUpstream(t, sim.Options{Organization: org})

	// The Organizations endpoint: the simulator, holding the first sync's
	// DescribeOrganization (every sync's first call) until released.
	var (
		describes atomic.Int32
		held      = make(chan struct{})
		release   = make(chan struct{})
		once      sync.Once
	)
	orgs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.Header.Get("X-Amz-Target"), ".DescribeOrganization") {
			if describes.Add(1) == 1 {
				once.Do(func() { close(held) })
				select {
				case <-release:
				case <-r.Context().Done():
					return
				}
			}
		}
		up.sim.ServeHTTP(w, r)
	}))
	t.Cleanup(orgs.Close)
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})

	args := []string{"--org-sync-interval", "20ms", "--organizations-endpoint", orgs.URL}
	a := startGateway(t, gatewayOptions{redis: rs.URL(), upstream: up, stateYAML: stateYAML, args: args})
	b := startGateway(t, gatewayOptions{redis: rs.URL(), upstream: up, stateYAML: stateYAML, args: args})
	mkt := a.client(t, mktAKID, mktSecret)
	if _, err := converse(t.Context(), mkt, "chat", 10); err != nil {
		t.Fatalf("marketing before the sync: %v", err)
	}

	// One sync is inside AWS, holding the lock: the other replica skips.
	<-held
	wait.For(t, "a replica to find the org sync lock taken", time.Minute, func() bool {
		return orgSyncCount(t, a, orgsync.ResultSkippedLocked)+orgSyncCount(t, b, orgsync.ResultSkippedLocked) >= 2
	})
	if n := describes.Load(); n != 1 {
		t.Fatalf("%d syncs started while one held the lock, want 1", n)
	}
	close(release)

	wait.Until(t, "the organization synced", time.Minute, func() error {
		st, _, err := a.store.Load(t.Context())
		if err != nil {
			return err
		}
		got := map[string]state.Account{}
		for _, acct := range st.Organization.Accounts {
			got[acct.ID] = acct
		}
		for id, want := range map[string]state.Account{
			"333333333333": {ID: "333333333333", Name: "ds-lab-renamed", Unit: "ou-ab12-ds000001", Team: "data-science"},
			"444444444444": {ID: "444444444444", Name: "campaigns", Unit: "ou-ab12-mkt00001", Team: "marketing", State: state.AccountSuspended},
			"555555555555": {ID: "555555555555", Name: "new-one", Unit: "ou-ab12-mkt00001", Team: "newcomers"},
		} {
			if got[id] != want {
				return errors.New("account " + id + " not synced yet")
			}
		}
		return nil
	})
	wait.For(t, "both replicas to count syncs", time.Minute, func() bool {
		return orgSyncCount(t, a, orgsync.ResultOK)+orgSyncCount(t, b, orgsync.ResultOK) >= 3
	})
	if e := orgSyncCount(t, a, orgsync.ResultError) + orgSyncCount(t, b, orgsync.ResultError); e != 0 {
		t.Errorf("%v syncs failed", e)
	}
	if orgSyncLastSuccess(t, a) == 0 && orgSyncLastSuccess(t, b) == 0 {
		t.Error("no last success time")
	}

	// The suspended account loses access at once; its credential stays.
	wait.For(t, "replica a to serve the synced state", time.Minute, func() bool {
		acct, ok := a.Current().Account("444444444444")
		return ok && acct.Inactive
	})
	_, err = converse(t.Context(), mkt, "chat", 10)
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "AccessDeniedException" {
		t.Fatalf("suspended account's call: %v, want AccessDeniedException", err)
	}
	if _, ok := a.Current().ByAccessKeyID(mktAKID); !ok {
		t.Error("the suspended account's credential was removed")
	}

	// Audited as an admin change by org-sync.
	entries, err := a.store.Audit(t.Context(), store.AuditQuery{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range entries {
		if e.Actor == orgsync.Actor && e.Action == "organization.replace" {
			found = true
		}
	}
	if !found {
		t.Error("no audit entry by org-sync")
	}
}

// TestSimulateServesOrganizations: with --simulate the built-in simulator
// serves the bootstrap file's organization through the Organizations API and
// the periodic sync reads it with no endpoint given, so make run users can
// watch the sync work; the synced organization is marked as AWS's.
func TestSimulateServesOrganizations(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	path := filepath.Join(t.TempDir(), "state.yaml")
	if err := os.WriteFile(path, []byte(baseState), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"--listen", "127.0.0.1:0", "--ops-listen", "127.0.0.1:0", "--log-level", "warn",
		"--simulate", "--bootstrap", path, "--org-sync-interval", "20ms"}
	env := map[string]string{"GATEWAY_ADMIN_TOKEN": "test=" + adminToken, "GATEWAY_REDIS_URL": rs.URL()}
	cfg, err := config.Load(args, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := New(ctx, cfg, Deps{Logger: slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	g := &gateway{Server: srv, cancel: cancel, done: make(chan error, 1)}
	go func() { g.done <- srv.Run(ctx) }()
	t.Cleanup(g.stop)

	wait.For(t, "a periodic sync against the simulator", time.Minute, func() bool {
		return orgSyncCount(t, g, orgsync.ResultOK) >= 1
	})
	st, _, err := g.store.Load(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if st.Organization.Source != state.OrgSourceAWS || len(st.Organization.Accounts) != 4 || len(st.Organization.Units) != 5 {
		t.Fatalf("organization after the sync: %+v", st.Organization)
	}
	for _, a := range st.Organization.Accounts {
		if a.ID == "222222222222" && (a.Team != "development" || a.Unit != "ou-ab12-devteam1") {
			t.Fatalf("account %+v lost its team or OU in the round trip", a)
		}
	}
	if e := orgSyncCount(t, g, orgsync.ResultError); e != 0 {
		t.Fatalf("%v syncs failed", e)
	}
}
