package admin

import (
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/bedrock-gateway/gateway/internal/state"
)

func TestListAndGetEntitlements(t *testing.T) {
	t.Parallel()
	e := newEnv(t, seedState(t))
	var list struct{ Entitlements []state.Entitlement }
	r := e.do(http.MethodGet, "/admin/v1/entitlements", "", "")
	wantStatus(t, r, http.StatusOK)
	r.decode(t, &list)
	if len(list.Entitlements) != 2 {
		t.Fatalf("listed %d entitlements, want 2", len(list.Entitlements))
	}
	var one entitlementBody
	r = e.do(http.MethodGet, "/admin/v1/entitlements/customer-support-llm", "", "")
	wantStatus(t, r, http.StatusOK)
	r.decode(t, &one)
	if one.Entitlement.Model != "anthropic.claude-3-5-haiku-20241022-v1:0" || len(one.Entitlement.Shares) != 2 {
		t.Fatalf("got %+v", one.Entitlement)
	}
	wantError(t, e.do(http.MethodGet, "/admin/v1/entitlements/nope", "", ""), http.StatusNotFound, codeNotFound)

	empty := newEnv(t, nil)
	r = empty.do(http.MethodGet, "/admin/v1/entitlements", "", "")
	wantStatus(t, r, http.StatusOK)
	if got := string(r.body); got != "{\n  \"entitlements\": []\n}\n" {
		t.Fatalf("empty list %q", got)
	}
}

func TestCreateEntitlement(t *testing.T) {
	t.Parallel()
	e := newEnv(t, seedState(t))
	body := `{"name":"analytics","model":"amazon.nova-pro-v1:0","scope":["ou-ab12-ds000001"],
		"limits":{"monthly_tokens":1000},"shares":[{"target":"333333333333"}],
		"created_at":"2001-01-01T00:00:00Z"}`
	r := e.json(http.MethodPost, "/admin/v1/entitlements", body)
	wantStatus(t, r, http.StatusCreated)
	var got entitlementBody
	r.decode(t, &got)
	ent := got.Entitlement
	if !ent.CreatedAt.Equal(t0) || !ent.UpdatedAt.Equal(t0) {
		t.Fatalf("timestamps %v %v, want the server's %v", ent.CreatedAt, ent.UpdatedAt, t0)
	}
	if ent.State != state.EntitlementActive || ent.Limits.Count != state.CountTotal {
		t.Fatalf("not normalized: %+v", ent)
	}
	if r.header.Get("Location") != "/admin/v1/entitlements/analytics" {
		t.Fatalf("Location %q", r.header.Get("Location"))
	}
	stored := entitlementOf(t, e.store.state(), "analytics")
	if stored.Model != "amazon.nova-pro-v1:0" || len(stored.Shares) != 1 {
		t.Fatalf("stored %+v", stored)
	}
	if a := e.store.auditActions(); a[len(a)-1] != "entitlement.create" {
		t.Fatalf("audit actions %v", a)
	}

	wantError(t, e.json(http.MethodPost, "/admin/v1/entitlements", body), http.StatusConflict, codeConflict)
}

func TestCreateEntitlementInvalid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, body string
		status     int
		code       string
		problems   int
	}{
		{"every problem listed",
			`{"name":"bad-one","model":"","scope":["ou-zzzz-nowhere00"],"limits":{"count":"words"},"state":"paused"}`,
			http.StatusBadRequest, codeValidationFailed, 4},
		{"share outside scope",
			`{"name":"narrow","model":"m","scope":["ou-ab12-ds000001"],"shares":[{"target":"222222222222"}]}`,
			http.StatusBadRequest, codeValidationFailed, 1},
		{"bad name", `{"name":"Bad_Name","model":"m"}`, http.StatusBadRequest, codeBadRequest, 0},
		{"unknown field", `{"name":"x","model":"m","monthly_tokens":5}`, http.StatusBadRequest, codeBadRequest, 0},
		{"not an object", `[1,2]`, http.StatusBadRequest, codeBadRequest, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, seedState(t))
			r := e.json(http.MethodPost, "/admin/v1/entitlements", tt.body)
			wantError(t, r, tt.status, tt.code)
			if n := len(r.problems(t)); tt.problems > 0 && n != tt.problems {
				t.Fatalf("%d problems, want %d: %s", n, tt.problems, r.body)
			}
			if e.store.ver() != 0 {
				t.Fatal("an invalid entitlement was stored")
			}
		})
	}
	e := newEnv(t, seedState(t))
	wantError(t, e.do(http.MethodPost, "/admin/v1/entitlements", "text/plain", `{"name":"x","model":"m"}`),
		http.StatusUnsupportedMediaType, codeUnsupportedMediaType)
}

func TestPatchEntitlement(t *testing.T) {
	t.Parallel()
	const path = "/admin/v1/entitlements/customer-support-llm"
	tests := []struct {
		name   string
		body   string
		status int
		code   string
		check  func(t *testing.T, before, after state.Entitlement)
	}{
		{name: "description only", body: `{"description":"for the bots"}`, status: http.StatusOK,
			check: func(t *testing.T, before, after state.Entitlement) {
				if after.Description != "for the bots" || after.Model != before.Model || len(after.Shares) != 2 ||
					after.Limits.MonthlyTokens != before.Limits.MonthlyTokens {
					t.Fatalf("after %+v", after)
				}
			}},
		{name: "limits replaced whole", body: `{"limits":{"requests_per_minute":5}}`, status: http.StatusOK,
			check: func(t *testing.T, _, after state.Entitlement) {
				if after.Limits.RequestsPerMinute != 5 || after.Limits.MonthlyTokens != 0 || after.Limits.Count != state.CountTotal {
					t.Fatalf("limits %+v", after.Limits)
				}
			}},
		{name: "suspend and same name", body: `{"name":"customer-support-llm","state":"suspended","model":"m2"}`, status: http.StatusOK,
			check: func(t *testing.T, _, after state.Entitlement) {
				if after.State != state.EntitlementSuspended || after.Model != "m2" {
					t.Fatalf("after %+v", after)
				}
			}},
		{name: "null resets", body: `{"description":null,"operations":null}`, status: http.StatusOK,
			check: func(t *testing.T, _, after state.Entitlement) {
				if after.Description != "" || after.Operations != nil {
					t.Fatalf("after %+v", after)
				}
			}},
		{name: "operations", body: `{"operations":["Converse","ConverseStream"]}`, status: http.StatusOK,
			check: func(t *testing.T, _, after state.Entitlement) {
				if !slices.Equal(after.Operations, []string{"Converse", "ConverseStream"}) {
					t.Fatalf("operations %v", after.Operations)
				}
			}},
		{name: "async output prefixes", body: `{"async_output_prefixes":["s3://video-out/{account}"]}`, status: http.StatusOK,
			check: func(t *testing.T, _, after state.Entitlement) {
				if !slices.Equal(after.AsyncOutputPrefixes, []string{"s3://video-out/{account}"}) {
					t.Fatalf("async_output_prefixes %v", after.AsyncOutputPrefixes)
				}
			}},
		{name: "invalid async output prefix", body: `{"async_output_prefixes":["s3://video-out/../x"]}`, status: http.StatusBadRequest, code: codeValidationFailed},
		{name: "service tiers and guardrails", body: `{"service_tiers":["priority","optimized"],"guardrails":["abc123"]}`, status: http.StatusOK,
			check: func(t *testing.T, _, after state.Entitlement) {
				if !slices.Equal(after.ServiceTiers, []string{"priority", "optimized"}) || !slices.Equal(after.Guardrails, []string{"abc123"}) {
					t.Fatalf("service_tiers %v guardrails %v", after.ServiceTiers, after.Guardrails)
				}
			}},
		{name: "unknown service tier", body: `{"service_tiers":["gold"]}`, status: http.StatusBadRequest, code: codeValidationFailed},
		{name: "malformed guardrail", body: `{"guardrails":["Not A Guardrail"]}`, status: http.StatusBadRequest, code: codeValidationFailed},
		{name: "billing", body: `{"billing":{"profiles":"per_team"}}`, status: http.StatusOK,
			check: func(t *testing.T, _, after state.Entitlement) {
				if after.Billing.Profiles != state.ProfilesPerTeam {
					t.Fatalf("billing %+v", after.Billing)
				}
			}},
		{name: "unknown billing mode", body: `{"billing":{"profiles":"per_account"}}`, status: http.StatusBadRequest, code: codeValidationFailed},
		{name: "rename refused", body: `{"name":"other"}`, status: http.StatusBadRequest, code: codeBadRequest},
		{name: "shares refused", body: `{"shares":[]}`, status: http.StatusBadRequest, code: codeBadRequest},
		{name: "timestamps refused", body: `{"created_at":"2020-01-01T00:00:00Z"}`, status: http.StatusBadRequest, code: codeBadRequest},
		{name: "empty patch", body: `{}`, status: http.StatusBadRequest, code: codeBadRequest},
		{name: "null body", body: `null`, status: http.StatusBadRequest, code: codeBadRequest},
		{name: "unknown limit", body: `{"limits":{"monthly_tokenz":5}}`, status: http.StatusBadRequest, code: codeBadRequest},
		{name: "wrong type", body: `{"scope":"o-exampleorg1"}`, status: http.StatusBadRequest, code: codeBadRequest},
		{name: "invalid result", body: `{"state":"paused","scope":["ou-ab12-ds000001"]}`, status: http.StatusBadRequest, code: codeValidationFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, seedState(t))
			before := entitlementOf(t, e.store.state(), "customer-support-llm")
			e.clock.Advance(time.Minute)
			r := e.do(http.MethodPatch, path, "application/merge-patch+json", tt.body)
			after := entitlementOf(t, e.store.state(), "customer-support-llm")
			if tt.code != "" {
				wantError(t, r, tt.status, tt.code)
				if e.store.ver() != 0 {
					t.Fatal("a refused patch changed the state")
				}
				return
			}
			wantStatus(t, r, tt.status)
			var got entitlementBody
			r.decode(t, &got)
			if !got.Entitlement.UpdatedAt.Equal(t0.Add(time.Minute)) || !after.UpdatedAt.Equal(t0.Add(time.Minute)) {
				t.Fatalf("updated_at %v, want %v", after.UpdatedAt, t0.Add(time.Minute))
			}
			if !after.CreatedAt.Equal(before.CreatedAt) {
				t.Fatalf("created_at changed: %v", after.CreatedAt)
			}
			tt.check(t, before, after)
		})
	}
	e := newEnv(t, seedState(t))
	wantError(t, e.json(http.MethodPatch, "/admin/v1/entitlements/nope", `{"description":"x"}`), http.StatusNotFound, codeNotFound)
}

func TestDeleteEntitlement(t *testing.T) {
	t.Parallel()
	e := newEnv(t, seedState(t))
	wantStatus(t, e.do(http.MethodDelete, "/admin/v1/entitlements/dev-only", "", ""), http.StatusOK)
	if findEntitlement(e.store.state(), "dev-only") >= 0 {
		t.Fatal("entitlement still stored")
	}
	wantError(t, e.do(http.MethodDelete, "/admin/v1/entitlements/dev-only", "", ""), http.StatusNotFound, codeNotFound)
	if a := e.store.auditActions(); !slices.Equal(a, []string{"entitlement.delete"}) {
		t.Fatalf("audit actions %v", a)
	}
}
