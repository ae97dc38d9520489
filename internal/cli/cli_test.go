package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bedrock-gateway/gateway/internal/admin"
	"github.com/bedrock-gateway/gateway/internal/opsauth"
	"github.com/bedrock-gateway/gateway/internal/state"
	"github.com/bedrock-gateway/gateway/internal/store"
	"github.com/bedrock-gateway/gateway/internal/testutil/leakcheck"
	"github.com/bedrock-gateway/gateway/internal/testutil/seed"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

// memStore is an in-memory admin.Store.
type memStore struct {
	mu      sync.Mutex
	st      *state.State
	version uint64
	audit   []store.AuditEntry
}

func (m *memStore) Load(context.Context) (*state.State, uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.st.Clone(), m.version, nil
}

func (m *memStore) Update(_ context.Context, actor, action string, fn func(*state.State) error) (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	next := m.st.Clone()
	if err := fn(next); err != nil {
		return m.version, err
	}
	next.Carry(m.st) // as the store does: removed keys are tombstoned
	a, _ := json.Marshal(m.st)
	b, _ := json.Marshal(next)
	if bytes.Equal(a, b) {
		return m.version, nil
	}
	m.st = next
	m.version++
	m.audit = append(m.audit, store.AuditEntry{ID: "1-" + string(rune('0'+m.version)), Time: time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC),
		Actor: actor, Action: action, Target: "state"})
	return m.version, nil
}

func (m *memStore) Replace(ctx context.Context, actor string, st *state.State) (uint64, error) {
	return m.Update(ctx, actor, "apply", func(cur *state.State) error { *cur = *st.Clone(); return nil })
}

func (m *memStore) Audit(_ context.Context, q store.AuditQuery) ([]store.AuditEntry, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := slices.DeleteFunc(slices.Clone(m.audit), func(e store.AuditEntry) bool { return !q.Matches(e) })
	slices.Reverse(out)
	if q.Limit > 0 && len(out) > q.Limit {
		out = out[:q.Limit]
	}
	return out, nil
}

func (m *memStore) state() *state.State {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.st.Clone()
}

const token = "cli-test-token-abcdef"

type harness struct {
	t       *testing.T
	store   *memStore
	srv     *httptest.Server
	vars    map[string]string
	example string // the shared example state file (seed.Example)
}

func newHarness(t *testing.T, opts ...func(*admin.Options)) *harness {
	t.Helper()
	ms := &memStore{st: &state.State{}}
	o := admin.Options{Store: ms, Tokens: []opsauth.Token{opsauth.NewToken("cli", opsauth.RoleAdmin, token)}}
	for _, f := range opts {
		f(&o)
	}
	srv := httptest.NewServer(admin.New(o))
	t.Cleanup(srv.Close)
	return &harness{t: t, store: ms, srv: srv, vars: map[string]string{
		EnvAdminURL:              srv.URL,
		EnvAdminToken:            token,
		seed.SupportBotSecretEnv: seed.SupportBotSecret,
	}, example: seed.ExampleFile(t)}
}

// run runs one command and returns its stdout, stderr and error.
func (h *harness) run(args ...string) (string, string, error) {
	h.t.Helper()
	var out, errOut bytes.Buffer
	err := Run(context.Background(), args, Env{
		Stdout: &out, Stderr: &errOut,
		Getenv:     func(k string) string { return h.vars[k] },
		HTTPClient: h.srv.Client(),
	})
	return out.String(), errOut.String(), err
}

// ok runs a command that must succeed and returns its stdout.
func (h *harness) ok(args ...string) string {
	h.t.Helper()
	out, errOut, err := h.run(args...)
	if err != nil {
		h.t.Fatalf("%v: %v\nstderr: %s", args, err, errOut)
	}
	return out
}

func (h *harness) apply() {
	h.t.Helper()
	h.ok("apply", "-f", h.example)
}

func wantContains(t *testing.T, got string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Fatalf("output lacks %q:\n%s", w, got)
		}
	}
}

func wantAPIError(t *testing.T, err error, code string) *APIError {
	t.Helper()
	var ae *APIError
	if !errors.As(err, &ae) || ae.Code != code {
		t.Fatalf("error %v, want an admin API error %s", err, code)
	}
	return ae
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCommands(t *testing.T) {
	t.Parallel()
	if got := Commands(); !slices.Equal(got, []string{"apply", "entitlements", "shares", "credentials", "principals", "audit", "export", "usage", "quota", "replicas", "org", "billing", "token"}) {
		t.Fatalf("Commands() = %v", got)
	}
	h := newHarness(t)
	if _, _, err := h.run("nope"); err == nil {
		t.Fatal("unknown command accepted")
	}
	if _, _, err := h.run(); err == nil {
		t.Fatal("no command accepted")
	}
}

func TestApplyCommand(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	out := h.ok("apply", "--dry-run", "-f", h.example)
	wantContains(t, out, "+ entitlement customer-support-llm", "+ share customer-support-llm/333333333333",
		"+ credential GWEXAMPLE00000000001", "dry run: ", "would be applied")
	if h.store.version != 0 {
		t.Fatal("dry run changed the store")
	}
	out = h.ok("apply", "-f", h.example)
	wantContains(t, out, "+ organization o-exampleorg1", "applied ", "(version 1)")
	out = h.ok("apply", "-f", h.example, "--prune")
	wantContains(t, out, "no changes")

	st := h.store.state()
	secrets := map[string]string{}
	for _, c := range st.Credentials {
		secrets[c.ID] = c.Secret + c.Key + c.KeySHA256
	}
	if secrets["GWEXAMPLE00000000001"] != seed.SupportBotSecret {
		t.Fatalf("secret_env not resolved client-side: %q", secrets["GWEXAMPLE00000000001"])
	}
	if !slices.ContainsFunc(st.Credentials, func(c state.Credential) bool {
		return c.KeySHA256 == seed.NotebooksKeySHA256 && c.Key == ""
	}) {
		t.Fatal("inline key not sent as its SHA-256")
	}

	// A change shows as an update.
	changed := strings.Replace(seed.Example(), "monthly_tokens: 2000000", "monthly_tokens: 3000000", 1)
	out = h.ok("apply", "-f", writeFile(t, "s.yaml", changed))
	wantContains(t, out, "~ share customer-support-llm/333333333333", "applied 1 change (version 2)")

	out = h.ok("apply", "-f", h.example, "--dry-run", "--output", "json")
	var res struct{ Changes []state.Change }
	if err := json.Unmarshal([]byte(out), &res); err != nil || len(res.Changes) != 1 {
		t.Fatalf("json output %q: %v", out, err)
	}
}

func TestApplyCommandErrors(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	delete(h.vars, seed.SupportBotSecretEnv)
	_, _, err := h.run("apply", "-f", h.example)
	if err == nil || !strings.Contains(err.Error(), seed.SupportBotSecretEnv) {
		t.Fatalf("error %v does not name the missing variable", err)
	}
	if _, _, err := h.run("apply"); err == nil || !strings.Contains(err.Error(), "-f FILE is required") {
		t.Fatalf("error %v", err)
	}
	if _, _, err := h.run("apply", "-f", filepath.Join(t.TempDir(), "missing.yaml")); err == nil {
		t.Fatal("missing file accepted")
	}
	h.vars[seed.SupportBotSecretEnv] = seed.SupportBotSecret
	bad := strings.Replace(seed.Example(), "scope: [o-exampleorg1]", "scope: [ou-ab12-ds000001]", 1)
	_, _, err = h.run("apply", "-f", writeFile(t, "bad.yaml", bad))
	ae := wantAPIError(t, err, "validation_failed")
	if !strings.Contains(ae.Error(), "outside the scope") || !strings.HasPrefix(ae.Error(), "validation_failed: ") {
		t.Fatalf("error text %q", ae.Error())
	}
}

func TestAuthErrors(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	delete(h.vars, EnvAdminToken)
	_, _, err := h.run("entitlements", "list")
	if err == nil || !strings.Contains(err.Error(), EnvAdminToken) {
		t.Fatalf("error %v", err)
	}
	h.vars[EnvAdminToken] = "wrong"
	_, _, err = h.run("entitlements", "list")
	ae := wantAPIError(t, err, "unauthorized")
	if !strings.Contains(ae.Message, EnvAdminToken) {
		t.Fatalf("message %q has no hint", ae.Message)
	}
	if _, _, err := h.run("entitlements", "list", "--admin-url", "ftp://x"); err == nil {
		t.Fatal("bad URL accepted")
	}
}

func TestEntitlementsCommands(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	wantContains(t, h.ok("entitlements", "list"), "no entitlements")
	h.apply()
	wantContains(t, h.ok("entitlements", "list"), "NAME", "customer-support-llm", "anthropic.claude-3-5-haiku", "50,000,000")

	// Flags after the positional NAME.
	out := h.ok("entitlements", "create", "analytics", "--model", "amazon.nova-pro-v1:0",
		"--scope", "ou-ab12-ds000001, 333333333333", "--monthly-tokens", "1000", "--requests-per-minute", "5",
		"--async-output-prefixes", "s3://analytics-out/{account}")
	wantContains(t, out, "created entitlement analytics", "ou-ab12-ds000001,333333333333", "1,000", "not shared with anyone",
		"async_output_prefixes:", "s3://analytics-out/{account}")
	e := h.store.state().Entitlements
	i := slices.IndexFunc(e, func(x state.Entitlement) bool { return x.Name == "analytics" })
	if i < 0 || e[i].Limits.RequestsPerMinute != 5 || len(e[i].Scope) != 2 || !slices.Equal(e[i].AsyncOutputPrefixes, []string{"s3://analytics-out/{account}"}) {
		t.Fatalf("stored %+v", e)
	}
	out = h.ok("entitlements", "create", "tiered", "--model", "amazon.nova-pro-v1:0",
		"--service-tiers", "priority,optimized", "--guardrails", "abc123, arn:aws:bedrock:us-east-1:111111111111:guardrail/def456")
	wantContains(t, out, "service_tiers:", "default, priority, optimized", "guardrails:", "abc123, arn:aws:bedrock:us-east-1:111111111111:guardrail/def456")
	wantContains(t, h.ok("entitlements", "get", "analytics"), "default", "guardrails:", "none")

	f := writeFile(t, "e.yaml", "name: from-file\nmodel: amazon.nova-lite-v1:0\nlimits: {monthly_tokens: 7}\nshares: [{target: \"222222222222\"}]\n")
	wantContains(t, h.ok("entitlements", "create", "-f", f), "created entitlement from-file", "222222222222")
	jf := writeFile(t, "e.json", `{"name":"from-json","model":"m","state":"suspended"}`)
	wantContains(t, h.ok("entitlements", "create", "-f", jf, "--output", "json"), `"name": "from-json"`, `"state": "suspended"`)
	if _, _, err := h.run("entitlements", "create", "-f", f, "--model", "x"); err == nil {
		t.Fatal("-f with entitlement flags accepted")
	}
	if _, _, err := h.run("entitlements", "create", "-f", writeFile(t, "bad.yaml", "name: x\nmodle: y\n")); err == nil ||
		!strings.Contains(err.Error(), "modle") {
		t.Fatalf("unknown field: %v", err)
	}
	_, _, err := h.run("entitlements", "create", "analytics", "--model", "m")
	wantAPIError(t, err, "conflict")

	out = h.ok("entitlements", "get", "customer-support-llm")
	wantContains(t, out, "model:", "anthropic.claude-3-5-haiku-20241022-v1:0", "shared with 2 targets", "ou-ab12-dev00001", "2,000,000", "50%, 80%, 100%")
	out = h.ok("entitlements", "get", "--output", "json", "customer-support-llm")
	var got struct{ Entitlement state.Entitlement }
	if err := json.Unmarshal([]byte(out), &got); err != nil || got.Entitlement.Name != "customer-support-llm" {
		t.Fatalf("json %q: %v", out, err)
	}
	_, _, err = h.run("entitlements", "get", "nope")
	if ae := wantAPIError(t, err, "not_found"); !strings.HasPrefix(ae.Error(), "not_found: entitlement") {
		t.Fatalf("error text %q", ae.Error())
	}

	wantContains(t, h.ok("entitlements", "delete", "analytics"), "deleted entitlement analytics")
	_, _, err = h.run("entitlements", "delete", "analytics")
	wantAPIError(t, err, "not_found")
}

func TestSharesCommands(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.apply()
	out := h.ok("shares", "add", "customer-support-llm", "ou-ab12-mkt00001", "--monthly-tokens", "500", "222222222222")
	wantContains(t, out, "shared with 4 targets", "ou-ab12-mkt00001", "500")

	csv := writeFile(t, "t.csv", "account_id,monthly_tokens\r\n111111111111,10\r\n\r\n# marketing\r\nr-ab12\r\n")
	out = h.ok("shares", "add", "customer-support-llm", "--csv", csv)
	wantContains(t, out, "shared with 6 targets", "111111111111", "r-ab12")

	bad := writeFile(t, "bad.csv", "target\n222222222222\nnot-an-id\n999999999999\n222222222222\n")
	_, _, err := h.run("shares", "add", "customer-support-llm", "--csv", bad)
	ae := wantAPIError(t, err, "validation_failed")
	wantContains(t, ae.Error(), "nothing was applied", "\n  line 3: not-an-id: not an account ID", "\n  line 5: ")
	_, _, err = h.run("shares", "add", "customer-support-llm", "999999999999")
	ae = wantAPIError(t, err, "validation_failed")
	wantContains(t, ae.Error(), "\n  targets[0]: 999999999999: unknown ID")

	if _, _, err := h.run("shares", "add", "customer-support-llm", "x", "--csv", csv); err == nil {
		t.Fatal("targets and --csv accepted together")
	}

	out = h.ok("shares", "remove", "customer-support-llm", "r-ab12", "111111111111")
	wantContains(t, out, "removed share of customer-support-llm with r-ab12", "with 111111111111")
	_, _, err = h.run("shares", "remove", "customer-support-llm", "r-ab12")
	wantAPIError(t, err, "not_found")
	wantContains(t, h.ok("shares", "list", "customer-support-llm"), "shared with 4 targets")
	wantContains(t, h.ok("shares", "list", "customer-support-llm", "--output", "json"), `"target": "ou-ab12-dev00001"`)
}

func TestCredentialsCommands(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.apply()
	out, errOut, err := h.run("credentials", "issue", "--account", "333333333333", "--kind", "sigv4", "--label", "lab", "--expires-in", "720h")
	if err != nil {
		t.Fatal(err)
	}
	wantContains(t, errOut, "shown only now")
	wantContains(t, out, "export AWS_ACCESS_KEY_ID=GW", "export AWS_SECRET_ACCESS_KEY=", "expires 20")
	secret := between(out, "export AWS_SECRET_ACCESS_KEY=", "\n")
	if len(secret) < 16 {
		t.Fatalf("secret %q", secret)
	}

	out, _, err = h.run("credentials", "issue", "--account", "333333333333", "--kind", "api_key", "--label", "nb2")
	if err != nil {
		t.Fatal(err)
	}
	key := between(out, "export AWS_BEARER_TOKEN_BEDROCK=", "\n")
	if !strings.HasPrefix(key, "bgw-") {
		t.Fatalf("api key line %q", out)
	}

	list := h.ok("credentials", "list")
	wantContains(t, list, "ID", "GWEXAMPLE00000000001", "lab", "nb2", "never")
	for _, s := range []string{secret, key, "not-for-production", seed.SupportBotSecret} {
		if strings.Contains(list, s) || strings.Contains(h.ok("credentials", "list", "--output", "json"), s) {
			t.Fatalf("list shows a secret %q", s)
		}
	}
	only := h.ok("credentials", "list", "--account", "333333333333")
	if strings.Contains(only, "GWEXAMPLE00000000001") {
		t.Fatalf("--account filter ignored:\n%s", only)
	}

	wantContains(t, h.ok("credentials", "revoke", "GWEXAMPLE00000000001", "GWEXAMPLE00000000002"), "revoked credential GWEXAMPLE00000000002")
	_, _, err = h.run("credentials", "revoke", "GWEXAMPLE00000000001")
	wantAPIError(t, err, "not_found")
	_, _, err = h.run("credentials", "issue", "--account", "999999999999", "--label", "x")
	wantAPIError(t, err, "validation_failed")
	if _, _, err := h.run("credentials", "issue", "--account", "333333333333", "--label", "x", "--kind", "password"); err == nil {
		t.Fatal("bad kind accepted")
	}
}

func between(s, start, end string) string {
	_, after, ok := strings.Cut(s, start)
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(after, end)
	return v
}

func TestAuditCommand(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	wantContains(t, h.ok("audit"), "no audit entries")
	h.apply()
	h.ok("entitlements", "delete", "customer-support-llm")
	out := h.ok("audit", "--limit", "1")
	wantContains(t, out, "ACTOR", "admin:cli", "entitlement.delete")
	if strings.Contains(out, "\tapply") || strings.Count(out, "\n") != 2 {
		t.Fatalf("limit ignored:\n%s", out)
	}
	wantContains(t, h.ok("audit", "--since", "24h", "--output", "json"), `"entries"`)
	out = h.ok("audit", "--action", "APPLY", "--actor", "cli")
	if !strings.Contains(out, "apply") || strings.Contains(out, "entitlement.delete") {
		t.Fatalf("--action apply --actor cli:\n%s", out)
	}
	wantContains(t, h.ok("audit", "--target", "nothing-like-it"), "no audit entries")
	if _, _, err := h.run("audit", "--since", "yesterday"); err == nil {
		t.Fatal("bad --since accepted")
	}
}

func TestHelpAndUsage(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	for _, args := range [][]string{
		{"apply", "-h"}, {"entitlements", "-h"}, {"entitlements", "create", "--help"}, {"shares", "help"},
		{"credentials", "issue", "-h"}, {"audit", "-h"},
	} {
		out, errOut, err := h.run(args...)
		if err != nil || out != "" || strings.Count(errOut, "Usage: gateway") != 1 {
			t.Fatalf("%v: err %v, stdout %q, stderr %q", args, err, out, errOut)
		}
	}
	// A bad flag is one line, not the whole usage.
	_, errOut, err := h.run("apply", "--bogus")
	if err == nil || errOut != "" || !strings.Contains(err.Error(), "bogus") {
		t.Fatalf("err %v, stderr %q", err, errOut)
	}
	for _, args := range [][]string{{"entitlements"}, {"entitlements", "frob"}, {"shares"}, {"credentials", "x"}} {
		if _, _, err := h.run(args...); err == nil {
			t.Fatalf("%v accepted", args)
		}
	}
	if _, _, err := h.run("entitlements", "list", "--output", "xml"); err == nil {
		t.Fatal("bad --output accepted")
	}
}

func TestParseInterleaved(t *testing.T) {
	t.Parallel()
	fs, _ := newFlags("x", "x", Env{Getenv: func(string) string { return "" }, Stderr: &bytes.Buffer{}}, readFormats)
	n := fs.Int("n", 0, "")
	pos, err := parse(fs, []string{"a", "-n", "3", "b", "--", "-c", "--output=json"})
	if err != nil || *n != 3 || !slices.Equal(pos, []string{"a", "b", "-c", "--output=json"}) {
		t.Fatalf("pos %v n %d err %v", pos, *n, err)
	}
}

func TestAPIErrorText(t *testing.T) {
	t.Parallel()
	e := decodeError(409, []byte(`{"error":{"code":"conflict","message":"in use","details":[{"id":"222222222222","referenced_by":["credential a","entitlement x share"]}]}}`))
	if got := e.Error(); got != "conflict: in use\n  222222222222: referenced by credential a, entitlement x share" {
		t.Fatalf("%q", got)
	}
	e = decodeError(502, []byte("<html>bad gateway</html>"))
	if got := e.Error(); got != "http_502: <html>bad gateway</html>" {
		t.Fatalf("%q", got)
	}
}

func TestExport(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	out, _, err := h.run("export")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "organization:") {
		t.Fatalf("export printed %q", out)
	}
}

// TestExportFile: --file always ends up a 0600 file, even over an existing
// 0644 one, holding exactly the export; -o picks yaml or json, and both are
// state files apply reads back.
func TestExportFile(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.apply()
	// A revoked key is part of the export.
	h.ok("credentials", "revoke", "GWEXAMPLE00000000001")
	yamlOut := h.ok("export", "--include-secrets")
	wantContains(t, yamlOut, "revoked:", "GWEXAMPLE00000000001")
	tests := []struct {
		name     string
		existing os.FileMode // 0: no file yet
		args     []string
		json     bool
	}{
		{name: "new file", args: []string{"--include-secrets"}},
		{name: "over a 0644 file", existing: 0o644, args: []string{"--include-secrets"}},
		{name: "over a 0666 file, json", existing: 0o666, args: []string{"--include-secrets", "-o", "json"}, json: true},
		{name: "public, --output yaml", existing: 0o644, args: []string{"--output", "yaml"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			path := filepath.Join(dir, "state-full.yaml")
			if tt.existing != 0 {
				if err := os.WriteFile(path, []byte("old content\n"), tt.existing); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(path, tt.existing); err != nil { // whatever the umask
					t.Fatal(err)
				}
			}
			out, errOut, err := h.run(append([]string{"export", "--file", path}, tt.args...)...)
			if err != nil || out != "" {
				t.Fatalf("export: %v, stdout %q, stderr %q", err, out, errOut)
			}
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != 0o600 {
				t.Errorf("mode %v, want 0600", fi.Mode().Perm())
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 1 {
				t.Errorf("temporary files left: %v", entries)
			}
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if tt.json != json.Valid(data) {
				t.Fatalf("json output %v, got:\n%s", tt.json, data)
			}
			if !slices.Contains(tt.args, "--include-secrets") {
				return // without secrets, no restore into an empty store
			}
			// Whichever format, apply reads it back into an empty store
			// with the same state, tombstones included.
			restored := newHarness(t)
			restored.ok("apply", "-f", path, "--prune")
			if again := restored.ok("export", "--include-secrets"); again != yamlOut {
				t.Errorf("restored export differs:\n%s\n---\n%s", again, yamlOut)
			}
		})
	}
	// -o once named the output file: it is a format now, and says so.
	_, _, err := h.run("export", "-o", filepath.Join(t.TempDir(), "state.yaml"))
	if err == nil || !strings.Contains(err.Error(), "--file") {
		t.Fatalf("-o FILE: %v", err)
	}
}

// The admin API's warnings at issue (an API key on a plain-HTTP gateway)
// reach the operator on stderr, apart from the secret on stdout.
func TestIssuedWarningsOnStderr(t *testing.T) {
	t.Parallel()
	var out, errOut bytes.Buffer
	printIssued(&out, &errOut, &issued{Credential: state.Credential{ID: "key-1", Kind: state.KindAPIKey, Account: "333333333333"},
		APIKey: "bgw-secret", Warnings: []string{"this gateway's data listener serves plain HTTP"}})
	if !strings.Contains(errOut.String(), "WARNING: this gateway's data listener serves plain HTTP") || strings.Contains(out.String(), "plain HTTP") {
		t.Fatalf("stdout %q stderr %q", out.String(), errOut.String())
	}
}
