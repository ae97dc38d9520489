package admin

import (
	"net/http"
	"testing"
)

// TestChangesSayStateVersion: every change answers the state version that
// holds it (a console compares it with each replica's snapshot version to
// say when the change is in force everywhere); a change that changes
// nothing answers the current version.
func TestChangesSayStateVersion(t *testing.T) {
	t.Parallel()
	e := newEnv(t, seedState(t))
	const arn = "arn:aws:iam::222222222222:role/app"
	steps := []struct {
		method, path, contentType, body string
	}{
		{http.MethodPost, "/admin/v1/entitlements", "application/json", `{"name":"extra","model":"amazon.nova-lite-v1:0"}`},
		{http.MethodPatch, "/admin/v1/entitlements/extra", "application/json", `{"description":"more"}`},
		{http.MethodPost, "/admin/v1/entitlements/extra/shares", "text/csv", "222222222222\n"},
		{http.MethodPost, "/admin/v1/entitlements/extra/shares", "text/csv", "222222222222\n"}, // unchanged
		{http.MethodDelete, "/admin/v1/entitlements/extra/shares/222222222222", "", ""},
		{http.MethodPost, "/admin/v1/credentials", "application/json", `{"account":"333333333333","kind":"sigv4","label":"v"}`},
		{http.MethodDelete, "/admin/v1/credentials/GWEXAMPLE00000000002", "", ""},
		{http.MethodPost, "/admin/v1/denied-principals", "application/json", `{"principal":"` + arn + `"}`},
		{http.MethodDelete, "/admin/v1/denied-principals/" + arn, "", ""},
		{http.MethodDelete, "/admin/v1/entitlements/extra", "", ""},
		{http.MethodPost, "/admin/v1/apply?dry_run=true", "application/yaml", seedOrganizationYAML},
		{http.MethodGet, "/admin/v1/organization", "", ""},
		{http.MethodPut, "/admin/v1/organization", "application/json", `{"id":"o-exampleorg1","hub_account":"111111111111",` +
			`"units":[{"id":"ou-ab12-dev00001","name":"Development"},{"id":"ou-ab12-ds000001","name":"Data Science"}],` +
			`"accounts":[{"id":"111111111111","name":"hub"},{"id":"222222222222","name":"support-bot","unit":"ou-ab12-dev00001"},` +
			`{"id":"333333333333","name":"ds-lab","unit":"ou-ab12-ds000001"}]}`},
	}
	for _, st := range steps {
		r := e.do(st.method, st.path, st.contentType, st.body)
		if r.status >= 300 {
			t.Fatalf("%s %s: %d %s", st.method, st.path, r.status, r.body)
		}
		var got struct {
			StateVersion *uint64 `json:"state_version"`
		}
		r.decode(t, &got)
		if got.StateVersion == nil || *got.StateVersion != e.store.ver() {
			t.Fatalf("%s %s: state_version %v, want %d; body %s", st.method, st.path, got.StateVersion, e.store.ver(), r.body)
		}
	}
	if e.store.ver() < 9 {
		t.Fatalf("only %d versions written", e.store.ver())
	}
}
