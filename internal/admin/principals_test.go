package admin

import (
	"net/http"
	"net/url"
	"slices"
	"testing"
)

func TestDeniedPrincipalsAPI(t *testing.T) {
	t.Parallel()
	const (
		a = "arn:aws:iam::222222222222:role/compromised-*"
		b = "arn:aws:iam::333333333333:user/mallory"
	)
	e := newEnv(t, seedState(t))
	list := func() []string {
		t.Helper()
		r := e.do(http.MethodGet, "/admin/v1/denied-principals", "", "")
		wantStatus(t, r, http.StatusOK)
		var body deniedPrincipalsBody
		r.decode(t, &body)
		if body.DeniedPrincipals == nil {
			t.Fatalf("list is null, want []: %s", r.body)
		}
		return body.DeniedPrincipals
	}
	if got := list(); len(got) != 0 {
		t.Fatalf("initial list %q", got)
	}

	steps := []struct {
		name   string
		method string
		path   string
		body   string
		status int
		want   []string // the stored list afterwards
	}{
		{"deny a role pattern", http.MethodPost, "/admin/v1/denied-principals", `{"principal":"` + b + `"}`, http.StatusOK, []string{b}},
		{"deny another", http.MethodPost, "/admin/v1/denied-principals", `{"principal":"` + a + `"}`, http.StatusOK, []string{a, b}},
		{"deny again changes nothing", http.MethodPost, "/admin/v1/denied-principals", `{"principal":"` + a + `"}`, http.StatusOK, []string{a, b}},
		{"malformed pattern", http.MethodPost, "/admin/v1/denied-principals", `{"principal":"support-*"}`, http.StatusBadRequest, []string{a, b}},
		{"wildcard in the account", http.MethodPost, "/admin/v1/denied-principals", `{"principal":"arn:aws:iam::*:role/x"}`, http.StatusBadRequest, []string{a, b}},
		{"empty pattern", http.MethodPost, "/admin/v1/denied-principals", `{}`, http.StatusBadRequest, []string{a, b}},
		{"allow (path with slashes)", http.MethodDelete, "/admin/v1/denied-principals/" + b, "", http.StatusOK, []string{a}},
		{"allow escaped", http.MethodDelete, "/admin/v1/denied-principals/" + url.PathEscape(a), "", http.StatusOK, []string{}},
		{"allow what is not listed", http.MethodDelete, "/admin/v1/denied-principals/" + a, "", http.StatusNotFound, []string{}},
	}
	for _, step := range steps {
		var r response
		if step.body != "" {
			r = e.json(step.method, step.path, step.body)
		} else {
			r = e.do(step.method, step.path, "", "")
		}
		if r.status != step.status {
			t.Fatalf("%s: status %d, want %d: %s", step.name, r.status, step.status, r.body)
		}
		if got := list(); !slices.Equal(got, step.want) {
			t.Fatalf("%s: list %q, want %q", step.name, got, step.want)
		}
		if got := nonNilStrings(e.store.state().DeniedPrincipals); !slices.Equal(got, step.want) {
			t.Fatalf("%s: stored %q, want %q", step.name, got, step.want)
		}
	}
	want := []string{"principal.deny", "principal.deny", "principal.allow", "principal.allow"}
	if a := e.store.auditActions(); !slices.Equal(a, want) {
		t.Fatalf("audit actions %v, want %v", a, want)
	}
}

func TestApplyKeepsDeniedPrincipals(t *testing.T) {
	t.Parallel()
	const (
		a = "arn:aws:iam::222222222222:role/a"
		b = "arn:aws:iam::222222222222:role/b"
	)
	cur := seedState(t)
	cur.DeniedPrincipals = []string{a}
	file := seedState(t)
	file.DeniedPrincipals = []string{b}
	for _, tt := range []struct {
		prune bool
		want  []string
	}{
		{false, []string{a, b}},
		{true, []string{b}},
	} {
		next, _, err := Plan(cur, file, tt.prune, t0)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(next.DeniedPrincipals, tt.want) {
			t.Errorf("prune=%v: denied %q, want %q", tt.prune, next.DeniedPrincipals, tt.want)
		}
	}
}
