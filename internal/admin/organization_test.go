package admin

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/bedrock-gateway/gateway/internal/state"
)

func orgJSON(t *testing.T, o state.Organization) string {
	t.Helper()
	b, err := json.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// withoutAccount returns the seed organization minus one account.
func withoutAccount(t *testing.T, id string) state.Organization {
	o := seedState(t).Organization
	o.Accounts = slices.DeleteFunc(o.Accounts, func(a state.Account) bool { return a.ID == id })
	return o
}

func TestGetOrganization(t *testing.T) {
	t.Parallel()
	e := newEnv(t, seedState(t))
	r := e.do(http.MethodGet, "/admin/v1/organization", "", "")
	wantStatus(t, r, http.StatusOK)
	var got organizationBody
	r.decode(t, &got)
	if got.Organization.ID != "o-exampleorg1" || len(got.Organization.Accounts) != 5 || got.Organization.Root != "r-ab12" {
		t.Fatalf("got %+v", got.Organization)
	}
}

func TestPutOrganization(t *testing.T) {
	t.Parallel()
	e := newEnv(t, seedState(t))
	o := seedState(t).Organization
	o.Accounts = append(o.Accounts, state.Account{ID: "666666666666", Name: "new", Unit: "ou-ab12-mkt00001"})
	r := e.json(http.MethodPut, "/admin/v1/organization", orgJSON(t, o))
	wantStatus(t, r, http.StatusOK)
	if n := len(e.store.state().Organization.Accounts); n != 6 {
		t.Fatalf("%d accounts stored", n)
	}
	// An unreferenced account can go without force.
	wantStatus(t, e.json(http.MethodPut, "/admin/v1/organization", orgJSON(t, withoutAccount(t, "555555555555"))), http.StatusOK)
	if a := e.store.auditActions(); !slices.Equal(a, []string{"organization.replace", "organization.replace"}) {
		t.Fatalf("audit actions %v", a)
	}
	bad := seedState(t).Organization
	bad.HubAccount = "12"
	bad.Units[0].Parent = "ou-zzzz-missing00"
	r = e.json(http.MethodPut, "/admin/v1/organization", orgJSON(t, bad))
	wantError(t, r, http.StatusBadRequest, codeValidationFailed)
	if len(r.problems(t)) < 2 {
		t.Fatalf("not every problem listed: %s", r.body)
	}
	wantError(t, e.json(http.MethodPut, "/admin/v1/organization?force=maybe", orgJSON(t, o)), http.StatusBadRequest, codeBadRequest)
	wantError(t, e.json(http.MethodPut, "/admin/v1/organization", `{"id":"o-exampleorg1","extra":1}`), http.StatusBadRequest, codeBadRequest)
}

func TestPutOrganizationReferenced(t *testing.T) {
	t.Parallel()
	e := newEnv(t, seedState(t))
	// 333333333333 has a share and a credential.
	body := orgJSON(t, withoutAccount(t, "333333333333"))
	r := e.json(http.MethodPut, "/admin/v1/organization", body)
	p := wantError(t, r, http.StatusConflict, codeConflict)
	for _, want := range []string{"333333333333", "entitlement customer-support-llm share", "credential key-94c87ac104059151", "force=true"} {
		if !strings.Contains(p.Message, want) {
			t.Errorf("message %q lacks %q", p.Message, want)
		}
	}
	if e.store.ver() != 0 {
		t.Fatal("refused PUT changed the state")
	}

	r = e.json(http.MethodPut, "/admin/v1/organization?force=true", body)
	wantStatus(t, r, http.StatusOK)
	st := e.store.state()
	if s := entitlementOf(t, st, "customer-support-llm").Shares; len(s) != 1 || s[0].Target != "ou-ab12-dev00001" {
		t.Fatalf("shares %+v", s)
	}
	if slices.ContainsFunc(st.Credentials, func(c state.Credential) bool { return c.Account == "333333333333" }) {
		t.Fatal("dangling credential kept")
	}
}

func TestPutOrganizationForceScope(t *testing.T) {
	t.Parallel()
	// Removing the Web OU drops it from a scope that names more than it.
	st := seedState(t)
	st.Entitlements[1].Scope = []string{"ou-ab12-dev00001", "ou-ab12-web00001"}
	e := newEnv(t, st)
	o := withoutAccount(t, "444444444444")
	o.Units = slices.DeleteFunc(o.Units, func(u state.Unit) bool { return u.ID == "ou-ab12-web00001" })
	wantError(t, e.json(http.MethodPut, "/admin/v1/organization", orgJSON(t, o)), http.StatusConflict, codeConflict)
	wantStatus(t, e.json(http.MethodPut, "/admin/v1/organization?force=true", orgJSON(t, o)), http.StatusOK)
	if sc := entitlementOf(t, e.store.state(), "dev-only").Scope; !slices.Equal(sc, []string{"ou-ab12-dev00001"}) {
		t.Fatalf("scope %v", sc)
	}

	// Removing an entitlement's whole scope would widen it: refused even with force.
	e = newEnv(t, seedState(t))
	o = withoutAccount(t, "222222222222")
	o.Accounts = slices.DeleteFunc(o.Accounts, func(a state.Account) bool { return a.ID == "444444444444" })
	o.Units = slices.DeleteFunc(o.Units, func(u state.Unit) bool {
		return u.ID == "ou-ab12-dev00001" || u.ID == "ou-ab12-web00001"
	})
	p := wantError(t, e.json(http.MethodPut, "/admin/v1/organization?force=true", orgJSON(t, o)), http.StatusConflict, codeConflict)
	if !strings.Contains(p.Message, "dev-only") {
		t.Fatalf("message %q", p.Message)
	}
	if e.store.ver() != 0 {
		t.Fatal("state changed")
	}

	// A child OU left pointing at a removed parent is not force's to fix.
	st = seedState(t)
	st.Entitlements = st.Entitlements[:1]
	e = newEnv(t, st)
	o2 := seedState(t).Organization
	o2.Units = slices.DeleteFunc(o2.Units, func(u state.Unit) bool { return u.ID == "ou-ab12-dev00001" })
	wantError(t, e.json(http.MethodPut, "/admin/v1/organization?force=true", orgJSON(t, o2)), http.StatusBadRequest, codeValidationFailed)
}
