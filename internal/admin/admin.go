// Package admin owns the admin HTTP API served on the ops listener under
// /admin/v1/: entitlements and their shares, the organization, credentials, the
// audit log, declarative apply, and usage and quota reports. Every change goes
// through Store.Update with a named action, so the store validates nothing twice,
// writes the audit log and tells every replica; this package validates the
// resulting state inside the update so nothing invalid is ever stored.
package admin

import (
	"context"
	"crypto/subtle"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/bedrock-gateway/gateway/internal/opsauth"
	"github.com/bedrock-gateway/gateway/internal/report"
	"github.com/bedrock-gateway/gateway/internal/state"
	"github.com/bedrock-gateway/gateway/internal/store"
)

// Store is the part of *store.Store the admin API uses.
type Store interface {
	// Load returns the whole state and its version; the caller owns the state.
	Load(ctx context.Context) (*state.State, uint64, error)
	// Update runs fn on a copy of the current state and stores the result under
	// the given actor and action, returning the new version. An error from fn
	// aborts and is returned (errors.Is/As must see it) with the current
	// version. fn may run more than once under contention.
	Update(ctx context.Context, actor, action string, fn func(*state.State) error) (uint64, error)
	// Replace stores st as the whole state.
	Replace(ctx context.Context, actor string, st *state.State) (uint64, error)
	// Audit returns audit entries, newest first.
	Audit(ctx context.Context, q store.AuditQuery) ([]store.AuditEntry, error)
}

// Syncer is the part of *store.Syncer the admin API uses: it waits until this
// replica serves a state at least as new as version v.
type Syncer interface {
	WaitVersion(ctx context.Context, v uint64) error
}

// UsageSource produces the usage report of GET /admin/v1/usage (served as
// JSON, or as CSV by report.WriteCSV). An error wrapping
// report.ErrInvalidQuery becomes a 400 carrying its message; any other error
// a 500.
type UsageSource interface {
	Usage(ctx context.Context, q report.UsageQuery) (*report.Report, error)
}

// DailyUsageSource produces the per-day usage of GET /admin/v1/usage/daily.
// Errors map as UsageSource's.
type DailyUsageSource interface {
	Daily(ctx context.Context, q report.DailyQuery) (*report.DailyReport, error)
}

// QuotaSource reports what remains of an entitlement's caps this month, for
// GET /admin/v1/entitlements/{name}/quota. Errors map as UsageSource's.
type QuotaSource interface {
	Quota(ctx context.Context, entitlement string) (*report.QuotaReport, error)
}

// Options configure the admin API handler.
type Options struct {
	// Store is required.
	Store Store
	// Syncer may be nil. When set, a mutating call waits until this replica
	// serves the new version before answering, so a revoke is in force here
	// when the call returns.
	Syncer Syncer
	// Tokens are the accepted bearer tokens (digests only). The audit log
	// records "admin:"+Name as the actor, never the token. With none, every
	// request is refused with 403. TokenSource, when set, is used instead.
	Tokens []opsauth.Token
	// TokenSource gives the tokens accepted now (a token file followed as it
	// changes); POST /admin/v1/tokens/reload reads it again when it is a
	// TokenReloader.
	TokenSource opsauth.Source
	// Sessions, when set, lets console sessions (the bgw_session cookie)
	// call the admin API as the token they signed in with.
	Sessions SessionResolver
	// Usage may be nil: /admin/v1/usage then answers 501.
	Usage UsageSource
	// Quota may be nil: /admin/v1/entitlements/{name}/quota then answers 501.
	Quota QuotaSource
	// Billing may be nil: /admin/v1/billing/profiles then answers 501.
	Billing BillingStore
	// DailyUsage may be nil: /admin/v1/usage/daily then answers 501.
	DailyUsage DailyUsageSource
	// Replicas may be nil: /admin/v1/replicas then answers 501.
	Replicas Replicas
	// ReplicaTTL is how recent a heartbeat must be for its replica to be
	// listed; zero means store.DefaultHeartbeatTTL.
	ReplicaTTL time.Duration
	// Logger; nil discards.
	Logger *slog.Logger
	// Now stamps created_at and updated_at; nil means time.Now.
	Now func() time.Time
	// SyncTimeout bounds the wait for Syncer; zero means 10 seconds.
	SyncTimeout time.Duration
	// PlainHTTPData says the data listener serves plain HTTP without a
	// TLS-terminating proxy in front, where bearer API keys are refused:
	// issuing one then comes with a warning.
	PlainHTTPData bool
}

// Request body bounds: apply and share lists may be large (a million share
// targets is a realistic organization), everything else is small.
const (
	maxLargeBody = 32 << 20
	maxSmallBody = 1 << 20
)

// TokenReloader reads the admin token file again (opsauth.FileSource).
type TokenReloader interface {
	Reload() (*opsauth.Set, error)
}

// SessionResolver finds the console session of a request (console.Manager).
type SessionResolver interface {
	// Resolve returns the principal and CSRF token of the request's session
	// cookie; ok is false when there is no cookie or its session is not valid
	// (expired, signed out, its token removed). An error means the sessions
	// could not be read.
	Resolve(r *http.Request) (p opsauth.Principal, csrf string, ok bool, err error)
}

type server struct {
	store       Store
	syncer      Syncer
	tokens      opsauth.Source
	sessions    SessionResolver
	routeTable  []route
	usage       UsageSource
	daily       DailyUsageSource
	quota       QuotaSource
	billing     BillingStore
	replicas    Replicas
	replicaTTL  time.Duration
	log         *slog.Logger
	now         func() time.Time
	syncTimeout time.Duration
	mux         *http.ServeMux
	plainHTTP   bool
}

// New returns the handler serving /admin/v1/... .
func New(opts Options) http.Handler {
	s := &server{
		store:       opts.Store,
		syncer:      opts.Syncer,
		usage:       opts.Usage,
		daily:       opts.DailyUsage,
		quota:       opts.Quota,
		billing:     opts.Billing,
		replicas:    opts.Replicas,
		replicaTTL:  opts.ReplicaTTL,
		log:         opts.Logger,
		now:         opts.Now,
		syncTimeout: opts.SyncTimeout,
		tokens:      opts.TokenSource,
		sessions:    opts.Sessions,
		mux:         http.NewServeMux(),
		plainHTTP:   opts.PlainHTTPData,
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.tokens == nil {
		s.tokens = opsauth.NewSet(opts.Tokens)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.syncTimeout <= 0 {
		s.syncTimeout = 10 * time.Second
	}
	s.routes()
	return s
}

// The least role each endpoint needs (see opsauth.Role): viewers read
// everything but secrets; operators also change entitlements, shares,
// credentials and the principal deny list; admins also replace the
// organization, apply, export and reload the token file.
func viewer(h handlerFunc) endpoint   { return endpoint{opsauth.RoleViewer, h} }
func operator(h handlerFunc) endpoint { return endpoint{opsauth.RoleOperator, h} }
func admin(h handlerFunc) endpoint    { return endpoint{opsauth.RoleAdmin, h} }

func (s *server) routes() {
	const p = "/admin/v1"
	s.handle(p+"/whoami", methods{http.MethodGet: viewer(s.whoami)})
	s.handle(p+"/entitlements", methods{http.MethodGet: viewer(s.listEntitlements), http.MethodPost: operator(s.createEntitlement)})
	s.handle(p+"/entitlements/{name}", methods{
		http.MethodGet: viewer(s.getEntitlement), http.MethodPatch: operator(s.patchEntitlement), http.MethodDelete: operator(s.deleteEntitlement),
	})
	s.handle(p+"/entitlements/{name}/shares", methods{http.MethodPost: operator(s.addShares)})
	s.handle(p+"/entitlements/{name}/shares/preview", methods{http.MethodPost: operator(s.previewShares)})
	s.handle(p+"/entitlements/{name}/shares/{target}", methods{http.MethodDelete: operator(s.removeShare)})
	s.handle(p+"/entitlements/{name}/quota", methods{http.MethodGet: viewer(s.getQuota)})
	s.handle(p+"/organization", methods{http.MethodGet: viewer(s.getOrganization), http.MethodPut: admin(s.putOrganization)})
	s.handle(p+"/credentials", methods{http.MethodGet: viewer(s.listCredentials), http.MethodPost: operator(s.issueCredential)})
	s.handle(p+"/credentials/{id}", methods{http.MethodDelete: operator(s.revokeCredential)})
	s.handle(p+"/audit", methods{http.MethodGet: viewer(s.listAudit)})
	s.handle(p+"/apply", methods{http.MethodPost: admin(s.apply)})
	s.handle(p+"/usage", methods{http.MethodGet: viewer(s.getUsage)})
	s.handle(p+"/usage/daily", methods{http.MethodGet: viewer(s.getDailyUsage)})
	// The export is the whole state, and with include_secrets=true every
	// SigV4 secret: admins only.
	s.handle(p+"/export", methods{http.MethodGet: admin(s.exportState)})
	s.handle(p+"/denied-principals", methods{http.MethodGet: viewer(s.listDeniedPrincipals), http.MethodPost: operator(s.denyPrincipal)})
	// Billing profile records: billing sync (an admin task) writes them.
	s.handle(p+"/billing/profiles", methods{http.MethodGet: viewer(s.listBillingProfiles), http.MethodPut: admin(s.replaceBillingProfiles)})
	s.handle(p+"/replicas", methods{http.MethodGet: viewer(s.listReplicas)})
	// A pattern is an ARN: it holds slashes.
	s.handle(p+"/denied-principals/{pattern...}", methods{http.MethodDelete: operator(s.allowPrincipal)})
	s.handle(p+"/tokens/reload", methods{http.MethodPost: admin(s.reloadTokens)})
	s.mux.HandleFunc("/", s.wrap(func(w http.ResponseWriter, r *http.Request) error {
		return errNotFound("no such admin endpoint: %s", r.URL.Path)
	}))
}

// handlerFunc is an admin endpoint; a returned *apiError is sent to the
// client, any other error becomes a logged 500.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// endpoint is a handler and the least role it needs.
type endpoint struct {
	role opsauth.Role
	h    handlerFunc
}

type methods map[string]endpoint

// route is one method of one pattern, as registered (tests walk them all).
type route struct {
	pattern, method string
	role            opsauth.Role
}

func (s *server) handle(pattern string, m methods) {
	allow := make([]string, 0, len(m))
	for _, method := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		if e, ok := m[method]; ok {
			allow = append(allow, method)
			s.routeTable = append(s.routeTable, route{pattern: pattern, method: method, role: e.role})
		}
	}
	allowed := strings.Join(allow, ", ")
	s.mux.HandleFunc(pattern, s.wrap(func(w http.ResponseWriter, r *http.Request) error {
		e, ok := m[r.Method]
		if !ok && r.Method == http.MethodHead {
			e, ok = m[http.MethodGet]
		}
		if !ok {
			w.Header().Set("Allow", allowed)
			return &apiError{Status: http.StatusMethodNotAllowed, Code: codeMethodNotAllowed,
				Message: "method " + r.Method + " is not allowed here; allowed: " + allowed}
		}
		p, _ := opsauth.FromContext(r.Context())
		if !p.Role.Allows(e.role) {
			s.log.InfoContext(r.Context(), "admin request refused: role", "method", r.Method, "path", r.URL.Path,
				"actor", actor(r), "role", p.Role, "needs", e.role)
			return &apiError{Status: http.StatusForbidden, Code: codeForbidden,
				Message: fmt.Sprintf("%s %s needs the %s role; %s has the %s role", r.Method, pattern, e.role, p.Name, p.Role)}
		}
		return e.h(w, r)
	}))
}

func (s *server) wrap(h handlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			s.writeError(w, r, err)
		}
	}
}

// actor returns the audit actor of an authenticated request.
func actor(r *http.Request) string {
	p, ok := opsauth.FromContext(r.Context())
	if !ok {
		return ""
	}
	return "admin:" + p.Name
}

// ServeHTTP authenticates every request before routing it: a bearer token,
// or else a console session cookie, whose unsafe methods must carry the
// session's CSRF token.
func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	tokens := s.tokens.Current()
	if tokens.Len() == 0 {
		s.writeError(w, r, &apiError{Status: http.StatusForbidden, Code: codeForbidden,
			Message: "admin tokens are not configured on this gateway (set GATEWAY_ADMIN_TOKEN or --admin-token-file); the admin API is disabled"})
		return
	}
	p, ok := tokens.Authenticate(r.Header.Get("Authorization"))
	if !ok && r.Header.Get("Authorization") == "" && s.sessions != nil {
		var err error
		p, ok, err = s.sessionPrincipal(r)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="gateway-admin"`)
		s.writeError(w, r, &apiError{Status: http.StatusUnauthorized, Code: codeUnauthorized,
			Message: "a valid admin token is required: Authorization: Bearer <token> (or a console session)"})
		return
	}
	s.mux.ServeHTTP(w, r.WithContext(opsauth.NewContext(r.Context(), p)))
}

// csrfHeader carries a console session's CSRF token on every change.
const csrfHeader = "X-CSRF-Token"

// sessionPrincipal authenticates a request by its console session. A cookie
// is sent by the browser with any request to the ops listener, wherever it
// comes from, so a change must also prove it comes from the console's own
// pages: they alone can read the CSRF token.
func (s *server) sessionPrincipal(r *http.Request) (opsauth.Principal, bool, error) {
	p, csrf, ok, err := s.sessions.Resolve(r)
	if err != nil {
		return opsauth.Principal{}, false, fmt.Errorf("reading console session: %w", err)
	}
	if !ok {
		return opsauth.Principal{}, false, nil
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		got := r.Header.Get(csrfHeader)
		if got == "" || csrf == "" || subtle.ConstantTimeCompare([]byte(got), []byte(csrf)) != 1 {
			return opsauth.Principal{}, false, &apiError{Status: http.StatusForbidden, Code: codeForbidden,
				Message: "a change made with a console session needs the session's CSRF token in the " + csrfHeader + " header"}
		}
	}
	return p, true, nil
}

// whoami answers GET /admin/v1/whoami: the caller's token name and role.
func (s *server) whoami(w http.ResponseWriter, r *http.Request) error {
	p, _ := opsauth.FromContext(r.Context())
	writeJSON(w, http.StatusOK, map[string]string{"name": p.Name, "role": string(p.Role)})
	return nil
}

type tokenInfo struct {
	Name string       `json:"name"`
	Role opsauth.Role `json:"role"`
}

// reloadTokens answers POST /admin/v1/tokens/reload: the token file is read
// again now (it is also followed as it changes) and the tokens in force are
// listed by name and role.
func (s *server) reloadTokens(w http.ResponseWriter, r *http.Request) error {
	set := s.tokens.Current()
	if rl, ok := s.tokens.(TokenReloader); ok {
		var err error
		set, err = rl.Reload()
		if err != nil {
			return &apiError{Status: http.StatusBadRequest, Code: codeValidationFailed,
				Message: "the admin token file was not reloaded; the previous tokens stay in force: " + err.Error()}
		}
	}
	s.log.InfoContext(r.Context(), "admin tokens reloaded", "actor", actor(r), "tokens", set.Len())
	list := []tokenInfo{}
	for _, p := range set.Principals() {
		list = append(list, tokenInfo{Name: p.Name, Role: p.Role})
	}
	writeJSON(w, http.StatusOK, map[string]any{"tokens": list})
	return nil
}
