package admin

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bedrock-gateway/gateway/internal/state"
)

func TestIssueSigV4(t *testing.T) {
	t.Parallel()
	e := newEnv(t, seedState(t))
	r := e.json(http.MethodPost, "/admin/v1/credentials", `{"account":"222222222222","kind":"sigv4","label":"bot","expires_at":"2025-04-01T00:00:00Z"}`)
	wantStatus(t, r, http.StatusCreated)
	var got issueResponse
	r.decode(t, &got)
	c := got.Credential
	if !state.IsAccessKeyID(c.AccessKeyID) || c.ID != c.AccessKeyID || c.Secret != "" || got.SecretAccessKey == "" || got.APIKey != "" {
		t.Fatalf("response %s", r.body)
	}
	if !c.CreatedAt.Equal(t0) || c.ExpiresAt == nil || !c.ExpiresAt.Equal(time.Date(2025, 4, 1, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("times %v %v", c.CreatedAt, c.ExpiresAt)
	}
	if strings.Count(string(r.body), got.SecretAccessKey) != 1 {
		t.Fatal("the secret appears more than once")
	}
	stored := e.store.state().Credentials
	i := slices.IndexFunc(stored, func(s state.Credential) bool { return s.ID == c.ID })
	if i < 0 || stored[i].Secret != got.SecretAccessKey {
		t.Fatal("the secret was not stored for signature verification")
	}
	// Never listed again.
	r = e.do(http.MethodGet, "/admin/v1/credentials", "", "")
	wantStatus(t, r, http.StatusOK)
	if strings.Contains(string(r.body), got.SecretAccessKey) || strings.Contains(string(r.body), "not-for-production") ||
		strings.Contains(string(r.body), `"secret"`) {
		t.Fatalf("list shows a secret: %s", r.body)
	}
	var list struct{ Credentials []state.Credential }
	r.decode(t, &list)
	if len(list.Credentials) != 3 {
		t.Fatalf("listed %d", len(list.Credentials))
	}
	if a := e.store.auditActions(); !slices.Equal(a, []string{"credential.issue"}) {
		t.Fatalf("audit actions %v", a)
	}
	for _, en := range e.store.audit {
		if strings.Contains(string(en.After), got.SecretAccessKey) {
			t.Fatal("audit entry carries the secret")
		}
	}
}

func TestIssueAPIKey(t *testing.T) {
	t.Parallel()
	e := newEnv(t, seedState(t))
	r := e.json(http.MethodPost, "/admin/v1/credentials", `{"account":"333333333333","kind":"api_key","label":"nb"}`)
	wantStatus(t, r, http.StatusCreated)
	var got issueResponse
	r.decode(t, &got)
	sum := sha256.Sum256([]byte(got.APIKey))
	h := hex.EncodeToString(sum[:])
	if got.APIKey == "" || got.SecretAccessKey != "" || got.Credential.KeySHA256 != h || got.Credential.ID != "key-"+h[:16] {
		t.Fatalf("response %s", r.body)
	}
	for _, c := range e.store.state().Credentials {
		if c.Key != "" || c.Secret == got.APIKey {
			t.Fatal("the plaintext key was stored")
		}
	}
	r = e.do(http.MethodGet, "/admin/v1/credentials?account=333333333333", "", "")
	var list struct{ Credentials []state.Credential }
	r.decode(t, &list)
	if len(list.Credentials) != 2 || strings.Contains(string(r.body), got.APIKey) {
		t.Fatalf("list %s", r.body)
	}
}

func TestIssueCredentialInvalid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, body string
		status     int
		code       string
	}{
		{"unknown account", `{"account":"999999999999","kind":"sigv4","label":"x"}`, http.StatusBadRequest, codeValidationFailed},
		{"bad kind", `{"account":"222222222222","kind":"password","label":"x"}`, http.StatusBadRequest, codeBadRequest},
		{"past expiry", `{"account":"222222222222","kind":"sigv4","label":"x","expires_at":"2020-01-01T00:00:00Z"}`, http.StatusBadRequest, codeBadRequest},
		{"secret given", `{"account":"222222222222","kind":"sigv4","label":"x","secret":"abc"}`, http.StatusBadRequest, codeBadRequest},
		{"control chars in label", `{"account":"222222222222","kind":"api_key","label":"a\u0000b"}`, http.StatusBadRequest, codeValidationFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, seedState(t))
			wantError(t, e.json(http.MethodPost, "/admin/v1/credentials", tt.body), tt.status, tt.code)
			if e.store.ver() != 0 {
				t.Fatal("state changed")
			}
		})
	}
}

func TestRevokeCredential(t *testing.T) {
	t.Parallel()
	e := newEnv(t, seedState(t))
	wantStatus(t, e.do(http.MethodDelete, "/admin/v1/credentials/GWEXAMPLE00000000002", "", ""), http.StatusOK)
	if len(e.store.state().Credentials) != 1 {
		t.Fatal("credential not removed")
	}
	wantError(t, e.do(http.MethodDelete, "/admin/v1/credentials/GWEXAMPLE00000000002", "", ""), http.StatusNotFound, codeNotFound)
	if a := e.store.auditActions(); !slices.Equal(a, []string{"credential.revoke"}) {
		t.Fatalf("audit actions %v", a)
	}
}

func TestAuditEndpoint(t *testing.T) {
	t.Parallel()
	e := newEnv(t, seedState(t))
	wantStatus(t, e.do(http.MethodDelete, "/admin/v1/credentials/GWEXAMPLE00000000002", "", ""), http.StatusOK)
	wantStatus(t, e.do(http.MethodDelete, "/admin/v1/entitlements/dev-only", "", ""), http.StatusOK)
	r := e.do(http.MethodGet, "/admin/v1/audit?limit=1", "", "")
	wantStatus(t, r, http.StatusOK)
	var got struct {
		Entries []struct{ Actor, Action string }
	}
	r.decode(t, &got)
	if len(got.Entries) != 1 || got.Entries[0].Action != "entitlement.delete" || got.Entries[0].Actor != "admin:ops" {
		t.Fatalf("entries %+v", got.Entries)
	}
	for _, q := range []string{"limit=0", "limit=x", "limit=1001", "since=yesterday"} {
		wantError(t, e.do(http.MethodGet, "/admin/v1/audit?"+q, "", ""), http.StatusBadRequest, codeBadRequest)
	}
	wantStatus(t, e.do(http.MethodGet, "/admin/v1/audit?since=2025-01-01T00:00:00Z&before=1-0", "", ""), http.StatusOK)

	// Filters: substrings of actor, action and target, ignoring case.
	filters := []struct {
		query   string
		actions []string
	}{
		{"action=REVOKE", []string{"credential.revoke"}},
		{"action=.delete&actor=ops", []string{"entitlement.delete"}},
		{"actor=admin:", []string{"entitlement.delete", "credential.revoke"}},
		{"actor=someone-else", nil},
		{"target=STATE&action=entitlement", []string{"entitlement.delete"}},
	}
	for _, f := range filters {
		r := e.do(http.MethodGet, "/admin/v1/audit?"+f.query, "", "")
		wantStatus(t, r, http.StatusOK)
		got.Entries = nil
		r.decode(t, &got)
		var actions []string
		for _, en := range got.Entries {
			actions = append(actions, en.Action)
		}
		if !slices.Equal(actions, f.actions) {
			t.Errorf("%s: actions %v, want %v", f.query, actions, f.actions)
		}
	}
	wantError(t, e.do(http.MethodGet, "/admin/v1/audit?actor="+strings.Repeat("a", 257), "", ""), http.StatusBadRequest, codeBadRequest)
}

// An API key issued while the data listener serves plain HTTP comes with a
// warning: the SDKs would not send it, and the gateway would refuse it.
func TestIssueAPIKeyWarnsOnPlainHTTP(t *testing.T) {
	t.Parallel()
	for _, plain := range []bool{false, true} {
		e := newEnv(t, seedState(t), func(o *Options) { o.PlainHTTPData = plain })
		for _, kind := range []string{"api_key", "sigv4"} {
			r := e.json(http.MethodPost, "/admin/v1/credentials", `{"account":"333333333333","kind":"`+kind+`","label":"nb-`+kind+`"}`)
			wantStatus(t, r, http.StatusCreated)
			var got issueResponse
			r.decode(t, &got)
			want := plain && kind == "api_key"
			if (len(got.Warnings) == 1 && strings.Contains(got.Warnings[0], "--tls-cert")) != want || (!want && len(got.Warnings) > 0) {
				t.Errorf("plain=%v kind=%s: warnings %q", plain, kind, got.Warnings)
			}
		}
	}
}
