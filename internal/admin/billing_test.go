package admin

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/bedrock-gateway/gateway/internal/opsauth"
	"github.com/bedrock-gateway/gateway/internal/state"
	"github.com/bedrock-gateway/gateway/internal/store"
	"github.com/bedrock-gateway/gateway/internal/testutil/redistest"
)

// TestBillingProfilesAPI replaces the recorded profiles on a real store: the
// call returns once this replica serves the version that carries them.
func TestBillingProfilesAPI(t *testing.T) {
	t.Parallel()
	st, err := store.New(store.Options{Client: redistest.Start(t).Client(t)})
	if err != nil {
		t.Fatal(err)
	}
	syncer := store.NewSyncer(store.SyncOptions{Store: st, Apply: func(*state.State, uint64) error { return nil }})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); syncer.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	srv := httptest.NewServer(New(Options{Store: st, Syncer: syncer, Billing: st,
		Tokens: []opsauth.Token{opsauth.NewToken("ops", opsauth.RoleAdmin, testToken)}}))
	t.Cleanup(srv.Close)
	e := &env{t: t, srv: srv}

	const arn = "arn:aws:bedrock:us-east-1:111111111111:application-inference-profile/abcdefabcdef"
	r := e.json(http.MethodPut, "/admin/v1/billing/profiles", `{"profiles":[{"entitlement":"support","team":"development","arn":"`+arn+`"}]}`)
	wantStatus(t, r, http.StatusOK)
	v, _ := st.Version(t.Context())
	if syncer.Version() < v {
		t.Fatalf("answered before the replica applied version %d", v)
	}
	var got billingProfilesBody
	e.do(http.MethodGet, "/admin/v1/billing/profiles", "", "").decode(t, &got)
	if len(got.Profiles) != 1 || got.Profiles[0].ARN != arn || got.Profiles[0].Team != "development" {
		t.Fatalf("profiles %+v", got)
	}
	audit, _ := st.Audit(t.Context(), store.AuditQuery{})
	if audit[0].Actor != "admin:ops" || audit[0].Action != store.ActionBillingProfiles {
		t.Errorf("audit %+v", audit[0])
	}
	for _, bad := range []string{
		`{"profiles":[{"entitlement":"Bad Name","arn":"` + arn + `"}]}`,
		`{"profiles":[{"entitlement":"support","arn":"anthropic.claude-3-haiku-20240307-v1:0"}]}`,
		`{"profiles":[{"entitlement":"support","arn":"` + arn + `"},{"entitlement":"support","arn":"` + arn + `"}]}`,
	} {
		r := e.json(http.MethodPut, "/admin/v1/billing/profiles", bad)
		if r.status != http.StatusBadRequest {
			t.Errorf("%s: %d %s", bad, r.status, r.body)
		}
	}
	wantError(t, newEnv(t, seedState(t)).do(http.MethodGet, "/admin/v1/billing/profiles", "", ""), http.StatusNotImplemented, codeNotImplemented)
}
