package admin

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/bedrock-gateway/gateway/internal/opsauth"
	"github.com/bedrock-gateway/gateway/internal/state"
)

func TestAuth(t *testing.T) {
	t.Parallel()
	e := newEnv(t, seedState(t), func(o *Options) {
		o.Tokens = append(o.Tokens, opsauth.NewToken("ci", opsauth.RoleAdmin, "another-token-abcdefgh"), opsauth.NewToken("empty", opsauth.RoleAdmin, ""))
	})
	tests := []struct {
		name   string
		auth   string
		status int
		code   string
	}{
		{"no header", "", http.StatusUnauthorized, codeUnauthorized},
		{"wrong token", "Bearer nope", http.StatusUnauthorized, codeUnauthorized},
		{"prefix of the token", "Bearer " + testToken[:10], http.StatusUnauthorized, codeUnauthorized},
		{"empty bearer", "Bearer ", http.StatusUnauthorized, codeUnauthorized},
		{"basic scheme", "Basic " + testToken, http.StatusUnauthorized, codeUnauthorized},
		{"token without scheme", testToken, http.StatusUnauthorized, codeUnauthorized},
		{"right token", "Bearer " + testToken, http.StatusOK, ""},
		{"lowercase scheme", "bearer " + testToken, http.StatusOK, ""},
		{"second token", "Bearer another-token-abcdefgh", http.StatusOK, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.doAuth(http.MethodGet, "/admin/v1/entitlements", "", "", tt.auth)
			if tt.code != "" {
				wantError(t, r, tt.status, tt.code)
				if strings.Contains(string(r.body), testToken) {
					t.Fatal("error body echoes the token")
				}
				return
			}
			wantStatus(t, r, tt.status)
		})
	}
}

// TestAuthActorInAudit: the audit actor is the token's name.
func TestAuthActorInAudit(t *testing.T) {
	t.Parallel()
	e := newEnv(t, seedState(t), func(o *Options) {
		o.Tokens = append(o.Tokens, opsauth.NewToken("ci", opsauth.RoleOperator, "another-token-abcdefgh"))
	})
	r := e.doAuth(http.MethodDelete, "/admin/v1/entitlements/dev-only", "", "", "Bearer another-token-abcdefgh")
	wantStatus(t, r, http.StatusNoContent)
	got := e.store.audit[len(e.store.audit)-1]
	if got.Actor != "admin:ci" || got.Action != "entitlement.delete" {
		t.Fatalf("audit entry actor %q action %q, want admin:ci entitlement.delete", got.Actor, got.Action)
	}
}

func TestNoTokensConfigured(t *testing.T) {
	t.Parallel()
	e := newEnv(t, seedState(t), func(o *Options) { o.Tokens = nil })
	for _, auth := range []string{"", "Bearer " + testToken} {
		p := wantError(t, e.doAuth(http.MethodGet, "/admin/v1/entitlements", "", "", auth), http.StatusForbidden, codeForbidden)
		if !strings.Contains(p.Message, "not configured") {
			t.Fatalf("message %q does not say tokens are not configured", p.Message)
		}
	}
}

func TestRouting(t *testing.T) {
	t.Parallel()
	e := newEnv(t, seedState(t))
	wantError(t, e.do(http.MethodGet, "/admin/v1/nope", "", ""), http.StatusNotFound, codeNotFound)
	wantError(t, e.do(http.MethodGet, "/", "", ""), http.StatusNotFound, codeNotFound)
	r := e.do(http.MethodPut, "/admin/v1/entitlements", "", "")
	wantError(t, r, http.StatusMethodNotAllowed, codeMethodNotAllowed)
	if got := r.header.Get("Allow"); got != "GET, POST" {
		t.Fatalf("Allow %q, want GET, POST", got)
	}
	wantError(t, e.do(http.MethodGet, "/admin/v1/apply", "", ""), http.StatusMethodNotAllowed, codeMethodNotAllowed)
	r = e.do(http.MethodGet, "/admin/v1/entitlements", "", "")
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q", ct)
	}
}

func TestBodyLimits(t *testing.T) {
	t.Parallel()
	e := newEnv(t, seedState(t))
	big := `{"name":"x","description":"` + strings.Repeat("a", maxSmallBody) + `"}`
	wantError(t, e.json(http.MethodPost, "/admin/v1/entitlements", big), http.StatusRequestEntityTooLarge, codeBadRequest)
	wantError(t, e.json(http.MethodPost, "/admin/v1/entitlements", `{"name":"a","model":"m"} {}`), http.StatusBadRequest, codeBadRequest)
	wantError(t, e.json(http.MethodPost, "/admin/v1/entitlements", ``), http.StatusBadRequest, codeBadRequest)
}

// recordingSyncer records the versions waited for.
type recordingSyncer struct {
	mu   sync.Mutex
	seen []uint64
	err  error
}

func (s *recordingSyncer) WaitVersion(_ context.Context, v uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seen = append(s.seen, v)
	return s.err
}

func TestSyncerWait(t *testing.T) {
	t.Parallel()
	sy := &recordingSyncer{}
	e := newEnv(t, seedState(t), func(o *Options) { o.Syncer = sy })
	wantStatus(t, e.do(http.MethodDelete, "/admin/v1/entitlements/dev-only", "", ""), http.StatusNoContent)
	// An unchanged state waits for nothing.
	wantStatus(t, e.json(http.MethodPost, "/admin/v1/entitlements/customer-support-llm/shares", `{"targets":["ou-ab12-dev00001"]}`), http.StatusOK)
	sy.mu.Lock()
	seen := append([]uint64(nil), sy.seen...)
	sy.mu.Unlock()
	if len(seen) != 1 || seen[0] != e.store.ver() {
		t.Fatalf("waited for %v, want [%d]", seen, e.store.ver())
	}

	sy2 := &recordingSyncer{err: errors.New("timed out")}
	e2 := newEnv(t, seedState(t), func(o *Options) { o.Syncer = sy2 })
	p := wantError(t, e2.do(http.MethodDelete, "/admin/v1/credentials/GWEXAMPLE00000000002", "", ""), http.StatusServiceUnavailable, codeInternal)
	if !strings.Contains(p.Message, "stored as version 1") {
		t.Fatalf("message %q does not say the change was stored", p.Message)
	}
}

func TestValidationListsEveryProblem(t *testing.T) {
	t.Parallel()
	err := errValidation("x", errors.Join(errors.New("a"), errors.New("b"), errors.New("c")))
	if d := err.Details.([]problem); len(d) != 3 {
		t.Fatalf("details %v, want 3", d)
	}
	st := &state.State{Organization: state.Organization{ID: "bad"}}
	if err := validate(st, "x"); err == nil {
		t.Fatal("invalid state validated")
	}
}
