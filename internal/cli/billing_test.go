package cli

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"

	"github.com/bedrock-gateway/gateway/internal/admin"
	"github.com/bedrock-gateway/gateway/internal/authn"
	"github.com/bedrock-gateway/gateway/internal/sim"
	"github.com/bedrock-gateway/gateway/internal/state"
)

const (
	billingKey    = "AKIABILLINGTEST00001"
	billingSecret = "billing-sync-test-secret"
)

// memBilling is an in-memory admin.BillingStore.
type memBilling struct {
	mu sync.Mutex
	ps []state.BillingProfile
}

func (m *memBilling) BillingProfiles(context.Context) ([]state.BillingProfile, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.ps), nil
}

func (m *memBilling) ReplaceBillingProfiles(_ context.Context, _ string, ps []state.BillingProfile) (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.ps = slices.Clone(ps)
	state.SortBillingProfiles(m.ps)
	return 1, nil
}

// billingSim serves the control plane, verifying signatures with the test key.
func billingSim(t *testing.T, h *harness) *sim.Simulator {
	t.Helper()
	lookup, err := authn.NewStaticLookup(&authn.Credential{ID: billingKey, Account: sim.HubAccount, Kind: authn.KindSigV4, Secret: billingSecret})
	if err != nil {
		t.Fatal(err)
	}
	v := authn.NewVerifier(authn.Options{})
	s := sim.New(sim.Options{Verify: func(r *http.Request, body []byte) error { return authn.VerifyStatic(v, r, body, lookup) }})
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	h.vars["AWS_ACCESS_KEY_ID"] = billingKey
	h.vars["AWS_SECRET_ACCESS_KEY"] = billingSecret
	h.vars["AWS_REGION"] = "us-east-1"
	h.vars["BEDROCK_ENDPOINT"] = srv.URL
	return s
}

func TestBillingSync(t *testing.T) {
	t.Parallel()
	mb := &memBilling{}
	h := newHarness(t, func(o *admin.Options) { o.Billing = mb })
	s := billingSim(t, h)
	h.ok("apply", "-f", h.example)
	h.ok("entitlements", "update", "customer-support-llm", "--description", "per team")
	wantContains(t, h.ok("billing", "sync", "--bedrock-endpoint", h.vars["BEDROCK_ENDPOINT"]), "0 profiles wanted; no changes")

	// Per team: a plan, then --apply.
	wantContains(t, h.ok("entitlements", "update", "customer-support-llm", "--billing-profiles", "per_team"), "billing_profiles:", "per_team")
	out := h.ok("billing", "sync", "--bedrock-endpoint", h.vars["BEDROCK_ENDPOINT"])
	wantContains(t, out, "+ create customer-support-llm team Development (us-east-1): bgw-customer-support-llm-development-",
		"+ create customer-support-llm team data-science", "2 profiles wanted; 2 changes not applied (run with --apply)")
	if len(s.Profiles()) != 0 {
		t.Fatal("a plan created profiles")
	}
	out = h.ok("billing", "sync", "--apply", "--bedrock-endpoint", h.vars["BEDROCK_ENDPOINT"])
	wantContains(t, out, "2 profiles wanted; applied 2 changes")
	if len(s.Profiles()) != 2 || len(mb.ps) != 2 {
		t.Fatalf("%d profiles, %d records", len(s.Profiles()), len(mb.ps))
	}
	wantContains(t, h.ok("billing", "sync", "--apply", "--bedrock-endpoint", h.vars["BEDROCK_ENDPOINT"]), "= keep customer-support-llm team Development", "no changes")

	// JSON, after the records were lost: the profiles are adopted.
	mb.ps = nil
	var res struct {
		Changes []struct{ Op, Entitlement, Team, ARN string }
		Records []state.BillingProfile
		Applied bool
	}
	raw := h.ok("billing", "sync", "--apply", "-o", "json", "--bedrock-endpoint", h.vars["BEDROCK_ENDPOINT"])
	if err := json.Unmarshal([]byte(raw), &res); err != nil {
		t.Fatal(err)
	}
	if !res.Applied || len(res.Changes) != 2 || res.Changes[0].Op != "adopt" || len(mb.ps) != 2 || len(s.Profiles()) != 2 {
		t.Fatalf("adoption: %s", raw)
	}

	// Bad command lines exit 2 with one line.
	for _, args := range [][]string{
		{"billing", "sync", "extra"},
		{"billing", "sync", "--bedrock-endpoint", "ftp://x"},
		{"billing", "sync", "--team-tag", "a", "--entitlement-tag", "a"},
		{"billing", "sink"},
	} {
		if _, _, err := h.run(args...); !errors.As(err, new(*UsageError)) {
			t.Errorf("%v: %v", args, err)
		}
	}
}
