package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bedrock-gateway/gateway/internal/opsauth"
	"github.com/bedrock-gateway/gateway/internal/state"
	"github.com/bedrock-gateway/gateway/internal/store"
)

// fakeStore keeps the state in memory and behaves like store.Store where the
// admin API can tell: fn runs on a copy, unchanged states are not written, and
// each write adds one audit entry.
type fakeStore struct {
	mu      sync.Mutex
	st      *state.State
	version uint64
	audit   []store.AuditEntry
	now     func() time.Time
}

func newFakeStore(st *state.State) *fakeStore {
	if st == nil {
		st = &state.State{}
	}
	return &fakeStore{st: st.Clone(), now: time.Now}
}

func (f *fakeStore) Load(context.Context) (*state.State, uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.st.Clone(), f.version, nil
}

func (f *fakeStore) Update(_ context.Context, actor, action string, fn func(*state.State) error) (uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	next := f.st.Clone()
	if err := fn(next); err != nil {
		return f.version, err
	}
	next.Carry(f.st) // as the store does: removed keys are tombstoned
	before, _ := json.Marshal(f.st.Public())
	after, _ := json.Marshal(next.Public())
	if bytes.Equal(before, after) {
		return f.version, nil
	}
	f.st = next.Clone()
	f.version++
	f.audit = append(f.audit, store.AuditEntry{
		ID: strconv.FormatUint(f.version, 10) + "-0", Time: f.now(), Actor: actor, Action: action,
		Target: "state", Before: before, After: after,
	})
	return f.version, nil
}

func (f *fakeStore) Replace(ctx context.Context, actor string, st *state.State) (uint64, error) {
	return f.Update(ctx, actor, "apply", func(cur *state.State) error { *cur = *st.Clone(); return nil })
}

func (f *fakeStore) Audit(_ context.Context, q store.AuditQuery) ([]store.AuditEntry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	limit := q.Limit
	if limit <= 0 {
		limit = store.DefaultAuditLimit
	}
	var out []store.AuditEntry
	for i := len(f.audit) - 1; i >= 0 && len(out) < limit; i-- {
		if q.Matches(f.audit[i]) {
			out = append(out, f.audit[i])
		}
	}
	return out, nil
}

func (f *fakeStore) state() *state.State {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.st.Clone()
}

func (f *fakeStore) ver() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.version
}

func (f *fakeStore) auditActions() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, e := range f.audit {
		out = append(out, e.Action)
	}
	return out
}

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

const testToken = "test-admin-token-0123456789"

var t0 = time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC)

// seedOrganizationYAML is the organization of seedYAML: the documented
// example's with an OU nested under another and two more accounts.
const seedOrganizationYAML = `
organization:
  id: o-exampleorg1
  hub_account: "111111111111"
  units:
    - {id: ou-ab12-dev00001, name: Development}
    - {id: ou-ab12-ds000001, name: Data Science}
    - {id: ou-ab12-mkt00001, name: Marketing, parent: r-ab12}
    - {id: ou-ab12-web00001, name: Web, parent: ou-ab12-dev00001}
  accounts:
    - {id: "111111111111", name: hub}
    - {id: "222222222222", name: support-bot, unit: ou-ab12-dev00001}
    - {id: "333333333333", name: ds-lab, unit: ou-ab12-ds000001, team: data-science}
    - {id: "444444444444", name: shop, unit: ou-ab12-web00001}
    - {id: "555555555555", name: ads, unit: ou-ab12-mkt00001}
`

// seedYAML is a valid state: the documented example with its secret inline.
const seedYAML = seedOrganizationYAML + `entitlements:
  - name: customer-support-llm
    model: anthropic.claude-3-5-haiku-20241022-v1:0
    scope: [o-exampleorg1]
    limits: {monthly_tokens: 50000000, account_monthly_tokens: 10000000, requests_per_minute: 600}
    shares:
      - {target: ou-ab12-dev00001}
      - {target: "333333333333", monthly_tokens: 2000000}
  - name: dev-only
    model: amazon.nova-lite-v1:0
    scope: [ou-ab12-dev00001]
credentials:
  - {account: "222222222222", kind: sigv4, label: local-dev, access_key_id: GWEXAMPLE00000000002, secret: not-for-production}
  - {account: "333333333333", kind: api_key, label: notebooks, key_sha256: "94c87ac104059151e89925f852355448f16a90ca63d73b1c36eda668c4d41615"}
`

func seedState(t testing.TB) *state.State {
	t.Helper()
	st, err := state.Parse([]byte(seedYAML))
	if err != nil {
		t.Fatal(err)
	}
	st.Normalize()
	if err := st.Validate(); err != nil {
		t.Fatal(err)
	}
	for i := range st.Entitlements {
		st.Entitlements[i].CreatedAt = t0.Add(-time.Hour)
		st.Entitlements[i].UpdatedAt = t0.Add(-time.Hour)
	}
	for i := range st.Credentials {
		st.Credentials[i].CreatedAt = t0.Add(-time.Hour)
	}
	return st
}

type env struct {
	t     *testing.T
	srv   *httptest.Server
	store *fakeStore
	clock *clock
}

type envOption func(*Options)

func newEnv(t *testing.T, st *state.State, opts ...envOption) *env {
	t.Helper()
	fs := newFakeStore(st)
	c := &clock{t: t0}
	o := Options{Store: fs, Tokens: []opsauth.Token{opsauth.NewToken("ops", opsauth.RoleAdmin, testToken)}, Now: c.Now}
	for _, opt := range opts {
		opt(&o)
	}
	srv := httptest.NewServer(New(o))
	t.Cleanup(srv.Close)
	return &env{t: t, srv: srv, store: fs, clock: c}
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decoding %s: %v", r.body, err)
	}
}

// apiErr decodes an error body.
func (r response) apiErr(t *testing.T) errorPayload {
	t.Helper()
	var b struct {
		Error struct {
			Code    string    `json:"code"`
			Message string    `json:"message"`
			Details []problem `json:"details"`
		} `json:"error"`
	}
	r.decode(t, &b)
	return errorPayload{Code: b.Error.Code, Message: b.Error.Message, Details: b.Error.Details}
}

func (r response) problems(t *testing.T) []problem {
	t.Helper()
	d, _ := r.apiErr(t).Details.([]problem)
	return d
}

// do sends a request with the test token; contentType "" sends none.
func (e *env) do(method, path, contentType, body string) response {
	e.t.Helper()
	return e.doAuth(method, path, contentType, body, "Bearer "+testToken)
}

func (e *env) doAuth(method, path, contentType, body, auth string) response {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: data}
}

func (e *env) json(method, path, body string) response {
	e.t.Helper()
	return e.do(method, path, "application/json", body)
}

func wantStatus(t *testing.T, r response, want int) {
	t.Helper()
	if r.status != want {
		t.Fatalf("status %d, want %d; body: %s", r.status, want, r.body)
	}
}

func wantError(t *testing.T, r response, status int, code string) errorPayload {
	t.Helper()
	wantStatus(t, r, status)
	p := r.apiErr(t)
	if p.Code != code {
		t.Fatalf("error code %q, want %q; body: %s", p.Code, code, r.body)
	}
	if p.Message == "" {
		t.Fatalf("error without a message: %s", r.body)
	}
	return p
}

func entitlementOf(t *testing.T, st *state.State, name string) state.Entitlement {
	t.Helper()
	i := findEntitlement(st, name)
	if i < 0 {
		t.Fatalf("entitlement %s not in state", name)
	}
	return st.Entitlements[i]
}
