package console

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bedrock-gateway/gateway/internal/admin"
	"github.com/bedrock-gateway/gateway/internal/opsauth"
	"github.com/bedrock-gateway/gateway/internal/store"
	"github.com/bedrock-gateway/gateway/internal/testutil/redistest"
)

const (
	adminToken    = "admin-token-0123456789abcdef"
	operatorToken = "operator-token-0123456789abcdef"
	viewerToken   = "viewer-token-0123456789abcdef"
)

var t0 = time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func tokenLine(name, role, secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return name + " " + role + " sha256:" + hex.EncodeToString(sum[:]) + "\n"
}

// env is an ops listener with the session API and the admin API over a real
// redis-server; replicas share it.
type env struct {
	t         *testing.T
	rdb       redis.UniversalClient
	clock     *clock
	tokenFile string
	tokens    *opsauth.FileSource
}

func newEnv(t *testing.T) *env {
	t.Helper()
	rs := redistest.Start(t)
	rdb := rs.Client(t)
	e := &env{t: t, rdb: rdb, clock: &clock{t: t0}, tokenFile: filepath.Join(t.TempDir(), "admin-tokens")}
	e.writeTokens(tokenLine("ops", "admin", adminToken) + tokenLine("oncall", "operator", operatorToken) + tokenLine("finance", "viewer", viewerToken))
	src, err := opsauth.NewFileSource(opsauth.FileSourceOptions{File: e.tokenFile})
	if err != nil {
		t.Fatal(err)
	}
	e.tokens = src
	return e
}

func (e *env) writeTokens(data string) {
	e.t.Helper()
	tmp := e.tokenFile + ".tmp"
	if err := os.WriteFile(tmp, []byte(data), 0o600); err != nil {
		e.t.Fatal(err)
	}
	if err := os.Rename(tmp, e.tokenFile); err != nil {
		e.t.Fatal(err)
	}
}

// replica starts one ops listener (TLS when tls is set).
func (e *env) replica(tls bool, opts ...func(*SessionOptions)) *httptest.Server {
	e.t.Helper()
	o := SessionOptions{Client: e.rdb, Tokens: e.tokens, Now: e.clock.Now}
	for _, f := range opts {
		f(&o)
	}
	sessions := NewSessions(o)
	st, err := store.New(store.Options{Client: e.rdb})
	if err != nil {
		e.t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(SessionPath, sessions)
	mux.Handle("/admin/", admin.New(admin.Options{Store: st, TokenSource: e.tokens, Sessions: sessions}))
	var srv *httptest.Server
	if tls {
		srv = httptest.NewTLSServer(mux)
	} else {
		srv = httptest.NewServer(mux)
	}
	e.t.Cleanup(srv.Close)
	return srv
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) cookie(t *testing.T) *http.Cookie {
	t.Helper()
	for _, c := range (&http.Response{Header: r.header}).Cookies() {
		if c.Name == CookieName {
			return c
		}
	}
	t.Fatalf("no %s cookie in %v", CookieName, r.header)
	return nil
}

func (r response) session(t *testing.T) sessionBody {
	t.Helper()
	var b sessionBody
	if err := json.Unmarshal(r.body, &b); err != nil {
		t.Fatalf("decoding %s: %v", r.body, err)
	}
	return b
}

func (r response) errorMessage(t *testing.T) string {
	t.Helper()
	var b errorBody
	if err := json.Unmarshal(r.body, &b); err != nil || b.Error.Message == "" {
		t.Fatalf("not an error body: %s", r.body)
	}
	return b.Error.Message
}

// call sends a request; cookie "" sends none, headers are pairs.
func call(t *testing.T, srv *httptest.Server, method, path, cookie, body string, headers ...string) response {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if cookie != "" {
		req.AddCookie(&http.Cookie{Name: CookieName, Value: cookie})
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: data}
}

func wantStatus(t *testing.T, r response, want int) {
	t.Helper()
	if r.status != want {
		t.Fatalf("status %d, want %d; body: %s", r.status, want, r.body)
	}
}

// signIn signs in with token and returns the cookie value and the body.
func signIn(t *testing.T, srv *httptest.Server, token string) (string, sessionBody) {
	t.Helper()
	r := call(t, srv, http.MethodPost, SessionPath, "", `{"token":"`+token+`"}`)
	wantStatus(t, r, http.StatusOK)
	return r.cookie(t).Value, r.session(t)
}

func TestSignIn(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	srv := e.replica(false)

	r := call(t, srv, http.MethodPost, SessionPath, "", `{"token":"`+operatorToken+`"}`)
	wantStatus(t, r, http.StatusOK)
	c := r.cookie(t)
	if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/" || c.Secure {
		t.Errorf("cookie %+v: want HttpOnly, SameSite=Strict, Path=/, not Secure over plain HTTP", c)
	}
	if c.MaxAge != int(DefaultMax/time.Second) {
		t.Errorf("cookie Max-Age %d, want %d", c.MaxAge, int(DefaultMax/time.Second))
	}
	b := r.session(t)
	if b.Name != "oncall" || b.Role != "operator" || len(b.CSRFToken) < 40 || b.ExpiresAt != t0.Add(DefaultIdle).Format(time.RFC3339) {
		t.Errorf("session body %+v", b)
	}
	if got := r.header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control %q", got)
	}

	// GET answers the same body; a second sign-in gets another session.
	g := call(t, srv, http.MethodGet, SessionPath, c.Value, "")
	wantStatus(t, g, http.StatusOK)
	if g.session(t) != b {
		t.Errorf("GET session %+v, want %+v", g.session(t), b)
	}
	c2, b2 := signIn(t, srv, operatorToken)
	if c2 == c.Value || b2.CSRFToken == b.CSRFToken {
		t.Error("two sign-ins share a session ID or CSRF token")
	}

	// Redis holds the session under a digest of its ID, never the ID.
	keys, err := e.rdb.Keys(t.Context(), "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if strings.Contains(k, c.Value) || strings.Contains(k, c2) {
			t.Fatalf("Redis key %q holds a session ID", k)
		}
	}
}

func TestSignInRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	srv := e.replica(false)
	cases := []struct {
		name, contentType, body string
		status                  int
	}{
		{"wrong token", "application/json", `{"token":"wrong-token-0123456789abcdef"}`, http.StatusUnauthorized},
		{"prefix of a token", "application/json", `{"token":"` + adminToken[:12] + `"}`, http.StatusUnauthorized},
		{"empty token", "application/json", `{"token":""}`, http.StatusUnauthorized},
		{"the token's digest", "application/json", `{"token":"` + strings.Fields(tokenLine("x", "admin", adminToken))[2] + `"}`, http.StatusUnauthorized},
		{"form post", "application/x-www-form-urlencoded", `token=` + adminToken, http.StatusUnsupportedMediaType},
		{"text/plain", "text/plain", `{"token":"` + adminToken + `"}`, http.StatusUnsupportedMediaType},
		{"not JSON", "application/json", `token`, http.StatusBadRequest},
		{"unknown field", "application/json", `{"token":"` + adminToken + `","role":"admin"}`, http.StatusBadRequest},
		{"too large", "application/json", `{"token":"` + strings.Repeat("a", 8<<10) + `"}`, http.StatusBadRequest},
	}
	var unauthorized []string
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := call(t, srv, http.MethodPost, SessionPath, "", tc.body, "Content-Type", tc.contentType)
			wantStatus(t, r, tc.status)
			msg := r.errorMessage(t)
			if strings.Contains(msg, adminToken) || len(r.header.Values("Set-Cookie")) > 0 {
				t.Fatalf("refusal echoes the token or sets a cookie: %s %v", r.body, r.header)
			}
			if tc.status == http.StatusUnauthorized {
				unauthorized = append(unauthorized, msg)
			}
		})
	}
	for _, m := range unauthorized {
		if m != unauthorized[0] {
			t.Fatalf("wrong tokens get different messages: %q", unauthorized)
		}
	}
	for _, path := range []string{SessionPath, "/admin/v1/whoami"} {
		wantStatus(t, call(t, srv, http.MethodGet, path, "", ""), http.StatusUnauthorized)
		wantStatus(t, call(t, srv, http.MethodGet, path, "not-a-session", ""), http.StatusUnauthorized)
		wantStatus(t, call(t, srv, http.MethodGet, path, strings.Repeat("A", 43), ""), http.StatusUnauthorized)
	}
	wantStatus(t, call(t, srv, http.MethodPut, SessionPath, "", ""), http.StatusMethodNotAllowed)
}

func TestSignInRateLimited(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	srv := e.replica(false)
	limited := false
	for range 40 {
		r := call(t, srv, http.MethodPost, SessionPath, "", `{"token":"wrong-token-0123456789abcdef"}`)
		if r.status == http.StatusTooManyRequests {
			limited = true
			break
		}
		wantStatus(t, r, http.StatusUnauthorized)
	}
	if !limited {
		t.Fatal("40 sign-in attempts in a row were never slowed down")
	}
}

// TestSessionCallsAdminAPI: the cookie authenticates admin API calls as the
// token signed in with; changes need the CSRF token; the role applies.
func TestSessionCallsAdminAPI(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	srv := e.replica(false)
	op, ob := signIn(t, srv, operatorToken)
	view, vb := signIn(t, srv, viewerToken)
	const deny = "/admin/v1/denied-principals"
	body := `{"principal":"arn:aws:iam::222222222222:role/app"}`

	r := call(t, srv, http.MethodGet, "/admin/v1/whoami", op, "")
	wantStatus(t, r, http.StatusOK)
	if !strings.Contains(string(r.body), `"oncall"`) || !strings.Contains(string(r.body), `"operator"`) {
		t.Fatalf("whoami %s", r.body)
	}
	cases := []struct {
		name    string
		cookie  string
		headers []string
		status  int
		message string
	}{
		{"no CSRF header", op, nil, http.StatusForbidden, "CSRF"},
		{"wrong CSRF token", op, []string{CSRFHeader, vb.CSRFToken}, http.StatusForbidden, "CSRF"},
		{"a prefix of the CSRF token", op, []string{CSRFHeader, ob.CSRFToken[:10]}, http.StatusForbidden, "CSRF"},
		{"viewer with its CSRF token", view, []string{CSRFHeader, vb.CSRFToken}, http.StatusForbidden, "needs the operator role"},
		{"operator with its CSRF token", op, []string{CSRFHeader, ob.CSRFToken}, http.StatusOK, ""},
		{"a wrong bearer token is not rescued by a cookie", op, []string{CSRFHeader, ob.CSRFToken, "Authorization", "Bearer wrong"}, http.StatusUnauthorized, ""},
	}
	for _, tc := range cases {
		r := call(t, srv, http.MethodPost, deny, tc.cookie, body, tc.headers...)
		if r.status != tc.status || !strings.Contains(string(r.body), tc.message) {
			t.Errorf("%s: %d %s, want %d with %q", tc.name, r.status, r.body, tc.status, tc.message)
		}
	}
	entries, err := mustStore(t, e).Audit(t.Context(), store.AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Actor != "admin:oncall" {
		t.Fatalf("audit %+v, want one change by admin:oncall", entries)
	}
}

func mustStore(t *testing.T, e *env) *store.Store {
	t.Helper()
	st, err := store.New(store.Options{Client: e.rdb})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestSessionExpiry(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		steps []time.Duration // clock advances, a use after each
		alive []bool          // whether the use after each step finds the session
	}{
		{"used within the idle time slides", []time.Duration{29 * time.Minute, 29 * time.Minute, 29 * time.Minute}, []bool{true, true, true}},
		{"idle too long", []time.Duration{10 * time.Minute, 30 * time.Minute}, []bool{true, false}},
		{"absolute expiry however busy", append(repeat(25*time.Minute, 28), 19*time.Minute, 2*time.Minute), append(repeatBool(true, 28), true, false)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			srv := e.replica(false)
			id, _ := signIn(t, srv, adminToken)
			start := e.clock.Now()
			for i, d := range tc.steps {
				e.clock.Advance(d)
				r := call(t, srv, http.MethodGet, SessionPath, id, "")
				if got := r.status == http.StatusOK; got != tc.alive[i] {
					t.Fatalf("after %v: status %d, want alive=%v", e.clock.Now().Sub(start), r.status, tc.alive[i])
				}
				if r.status == http.StatusOK {
					want := e.clock.Now().Add(DefaultIdle)
					if abs := start.Add(DefaultMax); abs.Before(want) {
						want = abs
					}
					if got := r.session(t).ExpiresAt; got != want.Format(time.RFC3339) {
						t.Fatalf("expires_at %s, want %s", got, want.Format(time.RFC3339))
					}
				}
			}
			if tc.alive[len(tc.alive)-1] {
				return
			}
			// An ended session stays ended and is gone from Redis.
			wantStatus(t, call(t, srv, http.MethodGet, "/admin/v1/whoami", id, ""), http.StatusUnauthorized)
			if n := len(e.rdb.Keys(t.Context(), "gw:console:session:*").Val()); n != 0 {
				t.Fatalf("%d session keys left in Redis", n)
			}
		})
	}
}

func repeat(d time.Duration, n int) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = d
	}
	return out
}

func repeatBool(b bool, n int) []bool {
	out := make([]bool, n)
	for i := range out {
		out[i] = b
	}
	return out
}

func TestSessionFlagsApply(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	srv := e.replica(false, func(o *SessionOptions) { o.Idle, o.Max = time.Minute, 90*time.Second })
	id, b := signIn(t, srv, adminToken)
	if b.ExpiresAt != t0.Add(time.Minute).Format(time.RFC3339) {
		t.Fatalf("expires_at %s", b.ExpiresAt)
	}
	// Redis forgets an abandoned session by itself when it would expire.
	keys := e.rdb.Keys(t.Context(), "gw:console:session:*").Val()
	if len(keys) != 1 {
		t.Fatalf("session keys %v", keys)
	}
	if ttl := e.rdb.PTTL(t.Context(), keys[0]).Val(); ttl <= 0 || ttl > time.Minute {
		t.Fatalf("session key TTL %v, want at most the idle time", ttl)
	}
	e.clock.Advance(50 * time.Second)
	r := call(t, srv, http.MethodGet, SessionPath, id, "")
	wantStatus(t, r, http.StatusOK)
	if got := r.session(t).ExpiresAt; got != t0.Add(90*time.Second).Format(time.RFC3339) {
		t.Fatalf("expires_at %s, want the absolute limit", got)
	}
	e.clock.Advance(40 * time.Second)
	wantStatus(t, call(t, srv, http.MethodGet, SessionPath, id, ""), http.StatusUnauthorized)
}

func TestSignOut(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	srv := e.replica(false)
	id, b := signIn(t, srv, adminToken)
	other, _ := signIn(t, srv, adminToken)

	r := call(t, srv, http.MethodDelete, SessionPath, id, "")
	wantStatus(t, r, http.StatusForbidden)
	if !strings.Contains(r.errorMessage(t), CSRFHeader) {
		t.Fatalf("refusal %s does not name the CSRF header", r.body)
	}
	wantStatus(t, call(t, srv, http.MethodGet, SessionPath, id, ""), http.StatusOK)

	r = call(t, srv, http.MethodDelete, SessionPath, id, "", CSRFHeader, b.CSRFToken)
	wantStatus(t, r, http.StatusNoContent)
	if c := r.cookie(t); c.MaxAge >= 0 || c.Value != "" {
		t.Fatalf("sign-out cookie %+v does not clear it", c)
	}
	wantStatus(t, call(t, srv, http.MethodGet, SessionPath, id, ""), http.StatusUnauthorized)
	wantStatus(t, call(t, srv, http.MethodGet, "/admin/v1/whoami", id, ""), http.StatusUnauthorized)
	// Signing out twice is fine; the other session is untouched.
	wantStatus(t, call(t, srv, http.MethodDelete, SessionPath, id, "", CSRFHeader, b.CSRFToken), http.StatusNoContent)
	wantStatus(t, call(t, srv, http.MethodGet, SessionPath, other, ""), http.StatusOK)
}

// TestSessionTokenRemoved: a session ends when its token leaves the token
// file, and follows its token's role as the file changes.
func TestSessionTokenRemoved(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	srv := e.replica(false)
	op, _ := signIn(t, srv, operatorToken)
	view, _ := signIn(t, srv, viewerToken)

	e.writeTokens(tokenLine("ops", "admin", adminToken) + tokenLine("oncall", "viewer", operatorToken))
	r := call(t, srv, http.MethodGet, SessionPath, op, "")
	wantStatus(t, r, http.StatusOK)
	if got := r.session(t).Role; got != "viewer" {
		t.Fatalf("role %s after the file changed it to viewer", got)
	}
	for _, path := range []string{SessionPath, "/admin/v1/whoami"} {
		wantStatus(t, call(t, srv, http.MethodGet, path, view, ""), http.StatusUnauthorized)
	}
	// Back in the file, the token needs a new sign-in: its session is gone.
	e.writeTokens(tokenLine("ops", "admin", adminToken) + tokenLine("oncall", "viewer", operatorToken) + tokenLine("finance", "viewer", viewerToken))
	wantStatus(t, call(t, srv, http.MethodGet, SessionPath, view, ""), http.StatusUnauthorized)
}

// TestSessionAnyReplica: a session opened on one replica works on another
// (they share Redis) and ends on both when signed out on either.
func TestSessionAnyReplica(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a, b := e.replica(false), e.replica(false)
	id, body := signIn(t, a, adminToken)
	wantStatus(t, call(t, b, http.MethodGet, "/admin/v1/whoami", id, ""), http.StatusOK)
	wantStatus(t, call(t, b, http.MethodDelete, SessionPath, id, "", CSRFHeader, body.CSRFToken), http.StatusNoContent)
	wantStatus(t, call(t, a, http.MethodGet, SessionPath, id, ""), http.StatusUnauthorized)
}

func TestSessionCookieSecure(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	cases := []struct {
		name   string
		srv    *httptest.Server
		secure bool
	}{
		{"TLS listener", e.replica(true), true},
		{"behind a TLS proxy", e.replica(false, func(o *SessionOptions) { o.SecureCookie = true }), true},
		{"plain HTTP", e.replica(false), false},
	}
	for _, tc := range cases {
		r := call(t, tc.srv, http.MethodPost, SessionPath, "", `{"token":"`+adminToken+`"}`)
		wantStatus(t, r, http.StatusOK)
		c := r.cookie(t)
		if c.Secure != tc.secure || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode {
			t.Errorf("%s: cookie %+v, want Secure=%v, HttpOnly, SameSite=Strict", tc.name, c, tc.secure)
		}
		s := r.session(t)
		d := call(t, tc.srv, http.MethodDelete, SessionPath, c.Value, "", CSRFHeader, s.CSRFToken)
		wantStatus(t, d, http.StatusNoContent)
		if got := d.cookie(t).Secure; got != tc.secure {
			t.Errorf("%s: clearing cookie Secure=%v", tc.name, got)
		}
	}
}

// TestSessionStoreDown: with Redis gone, sessions answer 503, not 401 (the
// user is not signed out by an outage).
func TestSessionStoreDown(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	e := newEnv(t)
	e.rdb = rs.Client(t)
	srv := e.replica(false, func(o *SessionOptions) { o.Timeout = 200 * time.Millisecond })
	id, _ := signIn(t, srv, adminToken)
	rs.Stop()
	wantStatus(t, call(t, srv, http.MethodGet, SessionPath, id, ""), http.StatusServiceUnavailable)
	wantStatus(t, call(t, srv, http.MethodPost, SessionPath, "", `{"token":"`+adminToken+`"}`), http.StatusServiceUnavailable)
	wantStatus(t, call(t, srv, http.MethodGet, "/admin/v1/whoami", id, ""), http.StatusServiceUnavailable)
}
