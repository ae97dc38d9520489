package admin

import (
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bedrock-gateway/gateway/internal/state"
)

type applyResult struct {
	Changes []state.Change
	Applied bool
	DryRun  bool `json:"dry_run"`
	Version uint64
}

func (e *env) apply(query, body string) (response, applyResult) {
	e.t.Helper()
	r := e.do(http.MethodPost, "/admin/v1/apply"+query, "application/yaml", body)
	var res applyResult
	if r.status == http.StatusOK {
		r.decode(e.t, &res)
	}
	return r, res
}

func changeStrings(cs []state.Change) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Op+" "+c.Kind+" "+c.ID)
	}
	return out
}

func TestApplyToEmptyStoreIsIdempotent(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	r, res := e.apply("?dry_run=true", seedYAML)
	wantStatus(t, r, http.StatusOK)
	if res.Applied || !res.DryRun || len(res.Changes) == 0 || e.store.ver() != 0 {
		t.Fatalf("dry run %+v, version %d", res, e.store.ver())
	}
	dry := changeStrings(res.Changes)

	r, res = e.apply("", seedYAML)
	wantStatus(t, r, http.StatusOK)
	if !res.Applied || res.Version != 1 || !slices.Equal(changeStrings(res.Changes), dry) {
		t.Fatalf("apply %+v, dry run said %v", res, dry)
	}
	ent := entitlementOf(t, e.store.state(), "customer-support-llm")
	if !ent.CreatedAt.Equal(t0) || !ent.UpdatedAt.Equal(t0) {
		t.Fatalf("timestamps %v %v", ent.CreatedAt, ent.UpdatedAt)
	}

	e.clock.Advance(time.Hour)
	for _, q := range []string{"", "?prune=true", "?dry_run=true&prune=true"} {
		r, res = e.apply(q, seedYAML)
		wantStatus(t, r, http.StatusOK)
		if res.Applied || len(res.Changes) != 0 || res.Version != 1 {
			t.Fatalf("re-apply %s: %+v", q, res)
		}
	}
	if e.store.ver() != 1 {
		t.Fatal("re-apply wrote a version")
	}
	if a := e.store.auditActions(); !slices.Equal(a, []string{"apply"}) {
		t.Fatalf("audit actions %v", a)
	}
	// The changes list is never null.
	r, _ = e.apply("", seedYAML)
	if !strings.Contains(string(r.body), `"changes": []`) {
		t.Fatalf("body %s", r.body)
	}
}

func TestApplyUpsertAndPrune(t *testing.T) {
	t.Parallel()
	st := seedState(t)
	st.Entitlements = append(st.Entitlements, state.Entitlement{Name: "legacy", Model: "m", State: "active",
		Limits:    state.Limits{Count: "total", AlertThresholds: []int{50, 80, 100}, OnStoreUnavailable: "fail_closed", Estimate: "typical"},
		CreatedAt: t0.Add(-time.Hour), UpdatedAt: t0.Add(-time.Hour)})
	e := newEnv(t, st)
	// The file changes one entitlement, adds a share, and omits "legacy",
	// "dev-only" and the api_key credential.
	file := seedOrganizationYAML + `entitlements:
  - name: customer-support-llm
    model: anthropic.claude-3-5-haiku-20241022-v1:0
    scope: [o-exampleorg1]
    limits: {monthly_tokens: 60000000, account_monthly_tokens: 10000000, requests_per_minute: 600}
    shares:
      - {target: ou-ab12-dev00001}
      - {target: "333333333333", monthly_tokens: 2000000}
      - {target: "555555555555"}
credentials:
  - {account: "222222222222", kind: sigv4, label: local-dev, access_key_id: GWEXAMPLE00000000002}
  - {account: "444444444444", kind: api_key, label: shop, key: shop-key-plaintext}
`
	e.clock.Advance(time.Hour)
	r, res := e.apply("", file)
	wantStatus(t, r, http.StatusOK)
	want := []string{
		"update entitlement customer-support-llm",
		"create share customer-support-llm/555555555555",
		"create credential key-" + sha256Hex("shop-key-plaintext")[:16],
	}
	if got := changeStrings(res.Changes); !slices.Equal(got, want) {
		t.Fatalf("changes %v, want %v", got, want)
	}
	got := e.store.state()
	if len(got.Entitlements) != 3 || len(got.Credentials) != 3 {
		t.Fatalf("upsert removed something: %d entitlements, %d credentials", len(got.Entitlements), len(got.Credentials))
	}
	ent := entitlementOf(t, got, "customer-support-llm")
	if !ent.UpdatedAt.Equal(t0.Add(time.Hour)) || !ent.CreatedAt.Equal(t0.Add(-time.Hour)) {
		t.Fatalf("changed entitlement timestamps %v %v", ent.CreatedAt, ent.UpdatedAt)
	}
	if u := entitlementOf(t, got, "legacy").UpdatedAt; !u.Equal(t0.Add(-time.Hour)) {
		t.Fatalf("untouched entitlement updated_at %v", u)
	}
	// A sigv4 credential listed without its secret keeps the stored one.
	for _, c := range got.Credentials {
		if c.ID == "GWEXAMPLE00000000002" && c.Secret != "not-for-production" {
			t.Fatalf("secret lost: %q", c.Secret)
		}
		if c.Key != "" {
			t.Fatal("plaintext key stored")
		}
	}

	r, res = e.apply("?prune=true&dry_run=true", file)
	wantStatus(t, r, http.StatusOK)
	want = []string{"delete entitlement dev-only", "delete entitlement legacy", "delete credential key-94c87ac104059151",
		"create revoked sha256:94c87ac104059151e89925f852355448f16a90ca63d73b1c36eda668c4d41615"}
	if got := changeStrings(res.Changes); !slices.Equal(got, want) {
		t.Fatalf("prune changes %v, want %v", got, want)
	}
	v := e.store.ver()
	r, res = e.apply("?prune=true", file)
	wantStatus(t, r, http.StatusOK)
	if !res.Applied || res.Version != v+1 || len(e.store.state().Entitlements) != 1 {
		t.Fatalf("prune %+v", res)
	}
}

func TestApplyRefused(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, query, ct, body string
		status                int
		code                  string
		msg                   string
	}{
		{name: "secret_env", body: strings.Replace(seedYAML, "secret: not-for-production", "secret_env: LOCAL_DEV_SECRET", 1),
			status: http.StatusBadRequest, code: codeBadRequest, msg: "client-side"},
		{name: "key_env", body: strings.Replace(seedYAML, `key_sha256: "94c87ac104059151e89925f852355448f16a90ca63d73b1c36eda668c4d41615"`, "key_env: NB_KEY", 1),
			status: http.StatusBadRequest, code: codeBadRequest, msg: "key_env"},
		{name: "invalid result", body: strings.Replace(seedYAML, "scope: [ou-ab12-dev00001]", "scope: [ou-ab12-nope0000]", 1),
			status: http.StatusBadRequest, code: codeValidationFailed, msg: "ou-ab12-nope0000"},
		{name: "unknown field", body: seedYAML + "\nextra: 1\n", status: http.StatusBadRequest, code: codeBadRequest, msg: "extra"},
		{name: "empty", body: "", status: http.StatusBadRequest, code: codeBadRequest, msg: "empty"},
		{name: "bad flag", query: "?prune=yes please", body: seedYAML, status: http.StatusBadRequest, code: codeBadRequest, msg: "prune"},
		{name: "media type", ct: "application/xml", body: seedYAML, status: http.StatusUnsupportedMediaType, code: codeUnsupportedMediaType, msg: "yaml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, nil)
			ct := tt.ct
			if ct == "" {
				ct = "application/yaml"
			}
			r := e.do(http.MethodPost, "/admin/v1/apply"+strings.ReplaceAll(tt.query, " ", "%20"), ct, tt.body)
			p := wantError(t, r, tt.status, tt.code)
			if !strings.Contains(p.Message+string(r.body), tt.msg) {
				t.Fatalf("error %s lacks %q", r.body, tt.msg)
			}
			if e.store.ver() != 0 {
				t.Fatal("state changed")
			}
		})
	}
}

func TestApplyJSONBody(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	r := e.do(http.MethodPost, "/admin/v1/apply", "application/json",
		`{"organization":{"id":"o-exampleorg1","hub_account":"111111111111","accounts":[{"id":"111111111111","name":"hub"}]},
		  "entitlements":[{"name":"e1","model":"m","scope":[],"shares":[{"target":"o-exampleorg1"}]}]}`)
	wantStatus(t, r, http.StatusOK)
	if len(e.store.state().Entitlements) != 1 {
		t.Fatal("not applied")
	}
}

// TestApplyCannotBringBackRevokedKeys: once a credential is revoked (by the
// admin API or pruned by an apply), applying a file that lists its key again
// fails, naming the key but never a secret, and changes nothing.
func TestApplyCannotBringBackRevokedKeys(t *testing.T) {
	t.Parallel()
	const notebookHash = "94c87ac104059151e89925f852355448f16a90ca63d73b1c36eda668c4d41615"
	withoutNotebook := strings.Replace(seedYAML,
		`  - {account: "333333333333", kind: api_key, label: notebooks, key_sha256: "`+notebookHash+`"}`+"\n", "", 1)
	tests := []struct {
		name   string
		revoke func(e *env)
		want   []string
	}{
		{"sigv4 revoked through the API", func(e *env) {
			wantStatus(t, e.do(http.MethodDelete, "/admin/v1/credentials/GWEXAMPLE00000000002", "", ""), http.StatusOK)
		}, []string{"credentials[0] (GWEXAMPLE00000000002): access key GWEXAMPLE00000000002 was revoked", "issue a new key"}},
		{"api key pruned", func(e *env) {
			r, _ := e.apply("?prune=true", withoutNotebook)
			wantStatus(t, r, http.StatusOK)
		}, []string{`credentials[1] (key-94c87ac104059151): API key "notebooks" (key_sha256 94c87ac104059151…) was revoked`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, nil)
			r, _ := e.apply("", seedYAML)
			wantStatus(t, r, http.StatusOK)
			tt.revoke(e)
			v := e.store.ver()
			for _, q := range []string{"", "?dry_run=true", "?prune=true"} {
				r := e.do(http.MethodPost, "/admin/v1/apply"+q, "application/yaml", seedYAML)
				p := wantError(t, r, http.StatusBadRequest, codeValidationFailed)
				for _, w := range tt.want {
					if !strings.Contains(p.Message, w) {
						t.Errorf("apply%s: error %q lacks %q", q, p.Message, w)
					}
				}
				if strings.Contains(string(r.body), "not-for-production") || strings.Contains(string(r.body), notebookHash) {
					t.Errorf("apply%s: error reveals a secret or a whole key hash: %s", q, r.body)
				}
			}
			if e.store.ver() != v {
				t.Fatal("a refused apply changed the state")
			}
		})
	}
}

// TestApplyRevokedIsAUnion: a file's revoked keys are added; a file without
// them (or with others) removes none.
func TestApplyRevokedIsAUnion(t *testing.T) {
	t.Parallel()
	e := newEnv(t, seedState(t))
	const other = "GWEXAMPLE00000000009"
	r, res := e.apply("", seedYAML+"revoked:\n  access_key_ids: ["+other+"]\n")
	wantStatus(t, r, http.StatusOK)
	if got := changeStrings(res.Changes); !slices.Equal(got, []string{"create revoked " + other}) {
		t.Fatalf("changes %v", got)
	}
	for _, q := range []string{"", "?prune=true"} {
		r, res = e.apply(q, seedYAML)
		wantStatus(t, r, http.StatusOK)
		if len(res.Changes) != 0 || !slices.Equal(e.store.state().Revoked.AccessKeyIDs, []string{other}) {
			t.Fatalf("apply%s without the tombstone: changes %v, revoked %+v", q, res.Changes, e.store.state().Revoked)
		}
	}
	r = e.do(http.MethodPost, "/admin/v1/apply", "application/yaml", seedYAML+"revoked:\n  access_key_ids: [AKIAEXAMPLE]\n")
	wantError(t, r, http.StatusBadRequest, codeValidationFailed)
}

// TestApplyWithoutOrganizationKeepsIt: once org sync has written the
// organization (states included), applying a file with no organization
// section, with or without prune, leaves the organization exactly as it is.
func TestApplyWithoutOrganizationKeepsIt(t *testing.T) {
	t.Parallel()
	for _, q := range []string{"", "?prune=true", "?dry_run=true", "?prune=true&dry_run=true"} {
		t.Run(q, func(t *testing.T) {
			t.Parallel()
			st := seedState(t)
			st.Organization.Accounts[len(st.Organization.Accounts)-1].State = state.AccountSuspended
			e := newEnv(t, st)
			want := e.store.state().Organization
			file := `entitlements:
  - name: customer-support-llm
    model: anthropic.claude-3-5-haiku-20241022-v1:0
    shares:
      - {target: "333333333333"}
credentials:
  - {account: "222222222222", kind: sigv4, label: local-dev, access_key_id: GWEXAMPLE00000000002}
`
			r, res := e.apply(q, file)
			wantStatus(t, r, http.StatusOK)
			for _, c := range res.Changes {
				if c.Kind == state.KindOrganization || c.Kind == state.KindUnit || c.Kind == state.KindAccount {
					t.Errorf("change %+v touches the organization", c)
				}
			}
			if got := e.store.state().Organization; !reflect.DeepEqual(got, want) {
				t.Errorf("organization after apply%s:\n%+v\nwant\n%+v", q, got, want)
			}
		})
	}
}
