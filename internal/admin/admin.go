// Package admin owns the admin HTTP API served on the ops listener under
// /admin/v1/: entitlements and their shares, the organization, credentials, the
// audit log, declarative apply, and usage and quota reports. Every change goes
// through Store.Update with a named action, so the store validates nothing twice,
// writes the audit log and tells every replica; this package validates the
// resulting state inside the update so nothing invalid is ever stored.
package admin

import (
	"context"
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
	// request is refused with 403.
	Tokens []opsauth.Token
	// Usage may be nil: /admin/v1/usage then answers 501.
	Usage UsageSource
	// Quota may be nil: /admin/v1/entitlements/{name}/quota then answers 501.
	Quota QuotaSource
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

type server struct {
	store       Store
	syncer      Syncer
	tokens      *opsauth.Set
	usage       UsageSource
	quota       QuotaSource
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
		quota:       opts.Quota,
		replicas:    opts.Replicas,
		replicaTTL:  opts.ReplicaTTL,
		log:         opts.Logger,
		now:         opts.Now,
		syncTimeout: opts.SyncTimeout,
		tokens:      opsauth.NewSet(opts.Tokens),
		mux:         http.NewServeMux(),
		plainHTTP:   opts.PlainHTTPData,
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
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

func (s *server) routes() {
	const p = "/admin/v1"
	s.handle(p+"/entitlements", methods{http.MethodGet: s.listEntitlements, http.MethodPost: s.createEntitlement})
	s.handle(p+"/entitlements/{name}", methods{
		http.MethodGet: s.getEntitlement, http.MethodPatch: s.patchEntitlement, http.MethodDelete: s.deleteEntitlement,
	})
	s.handle(p+"/entitlements/{name}/shares", methods{http.MethodPost: s.addShares})
	s.handle(p+"/entitlements/{name}/shares/{target}", methods{http.MethodDelete: s.removeShare})
	s.handle(p+"/entitlements/{name}/quota", methods{http.MethodGet: s.getQuota})
	s.handle(p+"/organization", methods{http.MethodGet: s.getOrganization, http.MethodPut: s.putOrganization})
	s.handle(p+"/credentials", methods{http.MethodGet: s.listCredentials, http.MethodPost: s.issueCredential})
	s.handle(p+"/credentials/{id}", methods{http.MethodDelete: s.revokeCredential})
	s.handle(p+"/audit", methods{http.MethodGet: s.listAudit})
	s.handle(p+"/apply", methods{http.MethodPost: s.apply})
	s.handle(p+"/usage", methods{http.MethodGet: s.getUsage})
	s.handle(p+"/replicas", methods{http.MethodGet: s.listReplicas})
	s.handle(p+"/export", methods{http.MethodGet: s.exportState})
	s.handle(p+"/denied-principals", methods{http.MethodGet: s.listDeniedPrincipals, http.MethodPost: s.denyPrincipal})
	// A pattern is an ARN: it holds slashes.
	s.handle(p+"/denied-principals/{pattern...}", methods{http.MethodDelete: s.allowPrincipal})
	s.mux.HandleFunc("/", s.wrap(func(w http.ResponseWriter, r *http.Request) error {
		return errNotFound("no such admin endpoint: %s", r.URL.Path)
	}))
}

// handlerFunc is an admin endpoint; a returned *apiError is sent to the
// client, any other error becomes a logged 500.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

type methods map[string]handlerFunc

func (s *server) handle(pattern string, m methods) {
	allow := make([]string, 0, len(m))
	for _, method := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		if m[method] != nil {
			allow = append(allow, method)
		}
	}
	allowed := strings.Join(allow, ", ")
	s.mux.HandleFunc(pattern, s.wrap(func(w http.ResponseWriter, r *http.Request) error {
		h := m[r.Method]
		if h == nil && r.Method == http.MethodHead {
			h = m[http.MethodGet]
		}
		if h == nil {
			w.Header().Set("Allow", allowed)
			return &apiError{Status: http.StatusMethodNotAllowed, Code: codeMethodNotAllowed,
				Message: "method " + r.Method + " is not allowed here; allowed: " + allowed}
		}
		return h(w, r)
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

// ServeHTTP authenticates every request before routing it.
func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if s.tokens.Len() == 0 {
		s.writeError(w, r, &apiError{Status: http.StatusForbidden, Code: codeForbidden,
			Message: "admin tokens are not configured on this gateway (set GATEWAY_ADMIN_TOKEN or --admin-token-file); the admin API is disabled"})
		return
	}
	// Every role may do everything until the console gives roles meaning;
	// the principal (with its role) travels in the context for that.
	p, ok := s.tokens.Authenticate(r.Header.Get("Authorization"))
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="gateway-admin"`)
		s.writeError(w, r, &apiError{Status: http.StatusUnauthorized, Code: codeUnauthorized,
			Message: "a valid admin token is required: Authorization: Bearer <token>"})
		return
	}
	s.mux.ServeHTTP(w, r.WithContext(opsauth.NewContext(r.Context(), p)))
}
