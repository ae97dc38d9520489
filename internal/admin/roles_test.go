package admin

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bedrock-gateway/gateway/internal/opsauth"
)

// Tokens of each role, as the role tests use them.
var roleTokens = map[opsauth.Role]string{
	opsauth.RoleViewer:   "viewer-token-0123456789",
	opsauth.RoleOperator: "operator-token-0123456789",
	opsauth.RoleAdmin:    testToken,
}

func withRoleTokens(o *Options) {
	o.Tokens = []opsauth.Token{
		opsauth.NewToken("ops", opsauth.RoleAdmin, testToken),
		opsauth.NewToken("oncall", opsauth.RoleOperator, roleTokens[opsauth.RoleOperator]),
		opsauth.NewToken("finance", opsauth.RoleViewer, roleTokens[opsauth.RoleViewer]),
	}
}

// wantRoles is the least role of every admin route. A route added without a
// line here fails TestRolesEveryRoute: none can escape role checks unseen.
var wantRoles = map[string]opsauth.Role{
	"GET /admin/v1/whoami":                                 opsauth.RoleViewer,
	"GET /admin/v1/entitlements":                           opsauth.RoleViewer,
	"POST /admin/v1/entitlements":                          opsauth.RoleOperator,
	"GET /admin/v1/entitlements/{name}":                    opsauth.RoleViewer,
	"PATCH /admin/v1/entitlements/{name}":                  opsauth.RoleOperator,
	"DELETE /admin/v1/entitlements/{name}":                 opsauth.RoleOperator,
	"POST /admin/v1/entitlements/{name}/shares":            opsauth.RoleOperator,
	"DELETE /admin/v1/entitlements/{name}/shares/{target}": opsauth.RoleOperator,
	"POST /admin/v1/entitlements/{name}/shares/preview":    opsauth.RoleOperator,
	"GET /admin/v1/entitlements/{name}/quota":              opsauth.RoleViewer,
	"GET /admin/v1/organization":                           opsauth.RoleViewer,
	"PUT /admin/v1/organization":                           opsauth.RoleAdmin,
	"GET /admin/v1/credentials":                            opsauth.RoleViewer,
	"POST /admin/v1/credentials":                           opsauth.RoleOperator,
	"DELETE /admin/v1/credentials/{id}":                    opsauth.RoleOperator,
	"GET /admin/v1/audit":                                  opsauth.RoleViewer,
	"POST /admin/v1/apply":                                 opsauth.RoleAdmin,
	"GET /admin/v1/usage":                                  opsauth.RoleViewer,
	"GET /admin/v1/usage/daily":                            opsauth.RoleViewer,
	"GET /admin/v1/export":                                 opsauth.RoleAdmin,
	"GET /admin/v1/denied-principals":                      opsauth.RoleViewer,
	"POST /admin/v1/denied-principals":                     opsauth.RoleOperator,
	"DELETE /admin/v1/denied-principals/{pattern...}":      opsauth.RoleOperator,
	"GET /admin/v1/billing/profiles":                       opsauth.RoleViewer,
	"GET /admin/v1/replicas":                               opsauth.RoleViewer,
	"PUT /admin/v1/billing/profiles":                       opsauth.RoleAdmin,
	"POST /admin/v1/tokens/reload":                         opsauth.RoleAdmin,
}

// routePath fills a route's wildcards with names the seed state holds.
func routePath(pattern string) string {
	return strings.NewReplacer(
		"{name}", "customer-support-llm",
		"{target}", "333333333333",
		"{id}", "GWEXAMPLE00000000002",
		"{pattern...}", "arn:aws:iam::222222222222:role/app",
	).Replace(pattern)
}

// TestRolesEveryRoute calls every registered route with a token of every
// role: a role below the route's is refused with 403 naming the role needed,
// and changes nothing; the route's role and above get past the check.
func TestRolesEveryRoute(t *testing.T) {
	t.Parallel()
	srv := New(Options{Store: newFakeStore(seedState(t))}).(*server)
	seen := map[string]bool{}
	for _, rt := range srv.routeTable {
		key := rt.method + " " + rt.pattern
		seen[key] = true
		want, ok := wantRoles[key]
		if !ok {
			t.Errorf("route %s (role %s) is not in wantRoles: say which role it needs", key, rt.role)
			continue
		}
		if rt.role != want {
			t.Errorf("route %s needs role %s, want %s", key, rt.role, want)
		}
	}
	for key := range wantRoles {
		if !seen[key] {
			t.Errorf("wantRoles names %s, which is not a route", key)
		}
	}
	roles := []opsauth.Role{opsauth.RoleViewer, opsauth.RoleOperator, opsauth.RoleAdmin}
	for _, rt := range srv.routeTable {
		for _, role := range roles {
			t.Run(rt.method+" "+rt.pattern+" as "+string(role), func(t *testing.T) {
				t.Parallel()
				e := newEnv(t, seedState(t), withRoleTokens)
				r := e.doAuth(rt.method, routePath(rt.pattern), "application/json", "{}", "Bearer "+roleTokens[role])
				if !role.Allows(rt.role) {
					p := wantError(t, r, http.StatusForbidden, codeForbidden)
					if !strings.Contains(p.Message, "needs the "+string(rt.role)+" role") {
						t.Fatalf("refusal %q does not name the role needed (%s)", p.Message, rt.role)
					}
					if v := e.store.ver(); v != 0 {
						t.Fatalf("a refused call changed the state (version %d)", v)
					}
					return
				}
				if r.status == http.StatusForbidden || r.status == http.StatusUnauthorized {
					t.Fatalf("role %s refused: %d %s", role, r.status, r.body)
				}
			})
		}
	}
}

func TestRolesHead(t *testing.T) {
	t.Parallel()
	e := newEnv(t, seedState(t), withRoleTokens)
	wantStatus(t, e.doAuth(http.MethodHead, "/admin/v1/entitlements", "", "", "Bearer "+roleTokens[opsauth.RoleViewer]), http.StatusOK)
	wantStatus(t, e.doAuth(http.MethodHead, "/admin/v1/export", "", "", "Bearer "+roleTokens[opsauth.RoleViewer]), http.StatusForbidden)
}

func TestWhoami(t *testing.T) {
	t.Parallel()
	e := newEnv(t, seedState(t), withRoleTokens)
	for role, tok := range roleTokens {
		r := e.doAuth(http.MethodGet, "/admin/v1/whoami", "", "", "Bearer "+tok)
		wantStatus(t, r, http.StatusOK)
		var got struct{ Name, Role string }
		r.decode(t, &got)
		if got.Role != string(role) || got.Name == "" {
			t.Errorf("whoami with the %s token = %+v", role, got)
		}
	}
}

func TestTokensReload(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "tokens")
	line := func(name, role, secret string) string {
		return name + " " + role + " sha256:" + sha256Hex(secret) + "\n"
	}
	if err := os.WriteFile(path, []byte(line("ops", "admin", testToken)+line("finance", "viewer", "viewer-token-0123456789")), 0o600); err != nil {
		t.Fatal(err)
	}
	src, err := opsauth.NewFileSource(opsauth.FileSourceOptions{File: path})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, seedState(t), func(o *Options) { o.TokenSource = src })
	wantError(t, e.doAuth(http.MethodPost, "/admin/v1/tokens/reload", "", "", "Bearer viewer-token-0123456789"), http.StatusForbidden, codeForbidden)
	r := e.do(http.MethodPost, "/admin/v1/tokens/reload", "", "")
	wantStatus(t, r, http.StatusOK)
	var got struct {
		Tokens []tokenInfo `json:"tokens"`
	}
	r.decode(t, &got)
	if len(got.Tokens) != 2 || got.Tokens[1] != (tokenInfo{Name: "finance", Role: opsauth.RoleViewer}) {
		t.Fatalf("tokens %+v", got.Tokens)
	}
	if strings.Contains(string(r.body), sha256Hex(testToken)) {
		t.Fatal("the reload answer shows a digest")
	}

	// A broken file is refused and the previous tokens stay in force.
	if err := os.WriteFile(path, []byte(line("ops", "admin", testToken)+"finance root nope\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := wantError(t, e.do(http.MethodPost, "/admin/v1/tokens/reload", "", ""), http.StatusBadRequest, codeValidationFailed)
	if !strings.Contains(p.Message, "line 2") {
		t.Fatalf("message %q does not name the bad line", p.Message)
	}
	wantStatus(t, e.doAuth(http.MethodGet, "/admin/v1/whoami", "", "", "Bearer viewer-token-0123456789"), http.StatusOK)

	// The viewer's line removed: refused on its next call, without a reload.
	if err := os.WriteFile(path, []byte(line("ops", "admin", testToken)), 0o600); err != nil {
		t.Fatal(err)
	}
	wantError(t, e.doAuth(http.MethodGet, "/admin/v1/whoami", "", "", "Bearer viewer-token-0123456789"), http.StatusUnauthorized, codeUnauthorized)
}
