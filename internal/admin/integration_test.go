package admin

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/bedrock-gateway/gateway/internal/opsauth"
	"github.com/bedrock-gateway/gateway/internal/state"
	"github.com/bedrock-gateway/gateway/internal/store"
	"github.com/bedrock-gateway/gateway/internal/testutil/redistest"
)

// TestWithRedisStore drives the admin API against the real store on a real
// redis-server, with a Syncer, so every call returns only once this replica
// has applied its change.
func TestWithRedisStore(t *testing.T) {
	t.Parallel()
	client := redistest.Start(t).Client(t)
	st, err := store.New(store.Options{Client: client})
	if err != nil {
		t.Fatal(err)
	}
	syncer := store.NewSyncer(store.SyncOptions{Store: st, Apply: func(*state.State, uint64) error { return nil }})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); syncer.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	c := &clock{t: t0}
	srv := httptest.NewServer(New(Options{Store: st, Syncer: syncer, Now: c.Now,
		Tokens: []opsauth.Token{opsauth.NewToken("ops", opsauth.RoleAdmin, testToken)}}))
	t.Cleanup(srv.Close)
	e := &env{t: t, srv: srv, clock: c}

	r, res := e.apply("", seedYAML)
	wantStatus(t, r, http.StatusOK)
	if !res.Applied || res.Version == 0 {
		t.Fatalf("apply %+v", res)
	}
	if syncer.Version() < res.Version {
		t.Fatalf("answered before the replica applied version %d (at %d)", res.Version, syncer.Version())
	}
	r, res2 := e.apply("", seedYAML)
	wantStatus(t, r, http.StatusOK)
	if res2.Applied || len(res2.Changes) != 0 || res2.Version != res.Version {
		t.Fatalf("re-apply %+v", res2)
	}

	wantStatus(t, e.json(http.MethodPost, "/admin/v1/entitlements",
		`{"name":"analytics","model":"amazon.nova-pro-v1:0","scope":["ou-ab12-ds000001"]}`), http.StatusCreated)
	wantStatus(t, e.do(http.MethodPost, "/admin/v1/entitlements/analytics/shares", "text/csv", "target\n333333333333\n"), http.StatusOK)
	wantError(t, e.do(http.MethodPost, "/admin/v1/entitlements/analytics/shares", "text/csv", "222222222222\n"),
		http.StatusBadRequest, codeValidationFailed)

	r = e.json(http.MethodPost, "/admin/v1/credentials", `{"account":"222222222222","kind":"sigv4","label":"bot"}`)
	wantStatus(t, r, http.StatusCreated)
	var issued issueResponse
	r.decode(t, &issued)
	loaded, _, err := st.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if i := slices.IndexFunc(loaded.Credentials, func(c state.Credential) bool { return c.ID == issued.Credential.ID }); i < 0 ||
		loaded.Credentials[i].Secret != issued.SecretAccessKey {
		t.Fatal("issued credential not stored with its secret")
	}
	wantStatus(t, e.do(http.MethodDelete, "/admin/v1/credentials/"+issued.Credential.ID, "", ""), http.StatusOK)
	wantStatus(t, e.do(http.MethodDelete, "/admin/v1/entitlements/analytics/shares/333333333333", "", ""), http.StatusOK)

	r = e.do(http.MethodGet, "/admin/v1/audit?limit=100", "", "")
	wantStatus(t, r, http.StatusOK)
	if strings.Contains(string(r.body), issued.SecretAccessKey) || strings.Contains(string(r.body), "not-for-production") {
		t.Fatal("the audit log shows a secret")
	}
	var audit struct{ Entries []store.AuditEntry }
	r.decode(t, &audit)
	var actions []string
	for _, en := range slices.Backward(audit.Entries) {
		if en.Actor != "admin:ops" {
			t.Fatalf("actor %q", en.Actor)
		}
		if len(actions) == 0 || actions[len(actions)-1] != en.Action {
			actions = append(actions, en.Action)
		}
	}
	want := []string{"apply", "entitlement.create", "share.add", "credential.issue", "credential.revoke", "share.remove"}
	if !slices.Equal(actions, want) {
		t.Fatalf("audit actions %v, want %v", actions, want)
	}
}
