package console

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"
)

// SessionPath is where the session API is served on the ops listener.
const SessionPath = "/console/api/session"

// sessionBody answers sign-in and GET: who is signed in, the CSRF token the
// pages send with every change, and when the session ends if unused.
type sessionBody struct {
	Name      string `json:"name"`
	Role      string `json:"role"`
	CSRFToken string `json:"csrf_token"`
	ExpiresAt string `json:"expires_at"`
}

type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// Messages of refusals. A wrong token always gets the same one, so the
// answer tells nothing about which tokens exist.
const (
	msgBadToken  = "the admin token is not valid"
	msgNoSession = "not signed in (or the session ended): sign in with an admin token"
	msgCSRF      = "signing out needs the session's CSRF token in the " + CSRFHeader + " header"
)

// maxLoginBody bounds a sign-in request: a token is well under it.
const maxLoginBody = 4 << 10

// ServeHTTP serves the session API at SessionPath: POST signs in with an
// admin token, GET says who is signed in, DELETE signs out.
func (m *Sessions) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	switch r.Method {
	case http.MethodPost:
		m.signIn(w, r)
	case http.MethodGet, http.MethodHead:
		_, s, err := m.lookup(r)
		if err != nil {
			m.fail(w, r, err)
			return
		}
		m.writeSession(w, http.StatusOK, s)
	case http.MethodDelete:
		m.signOut(w, r)
	default:
		w.Header().Set("Allow", "GET, POST, DELETE")
		writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "method "+r.Method+" is not allowed here; allowed: GET, POST, DELETE")
	}
}

func (m *Sessions) signIn(w http.ResponseWriter, r *http.Request) {
	// JSON only: a cross-site form cannot send it without the browser
	// asking first (and being refused), so nobody signs a victim in.
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		writeError(w, http.StatusUnsupportedMediaType, "unsupported_media_type", `sign in with Content-Type application/json and {"token":"<admin token>"}`)
		return
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxLoginBody))
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", "the request body is too large or could not be read")
		return
	}
	var req struct {
		Token string `json:"token"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", `the body must be {"token":"<admin token>"}`)
		return
	}
	if !m.logins.Allow() {
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusTooManyRequests, "too_many_requests", "too many sign-in attempts; try again in a moment")
		return
	}
	token := strings.TrimSpace(req.Token)
	p, ok := m.tokens.Current().Authenticate("Bearer " + token)
	if !ok {
		m.log.WarnContext(r.Context(), "console sign-in refused: unknown token", "remote", r.RemoteAddr)
		writeError(w, http.StatusUnauthorized, "unauthorized", msgBadToken)
		return
	}
	// A session cookie already held is replaced: end its session.
	if c, err := r.Cookie(CookieName); err == nil && validID(c.Value) {
		if err := m.end(r.Context(), c.Value); err != nil {
			m.fail(w, r, err)
			return
		}
	}
	id, s, err := m.create(r.Context(), p, sha256.Sum256([]byte(token)))
	if err != nil {
		m.fail(w, r, err)
		return
	}
	m.log.InfoContext(r.Context(), "console sign-in", "actor", "admin:"+p.Name, "role", p.Role)
	http.SetCookie(w, m.cookie(r, id, int(m.max/time.Second)))
	m.writeSession(w, http.StatusOK, s)
}

func (m *Sessions) signOut(w http.ResponseWriter, r *http.Request) {
	id, s, err := m.lookup(r)
	switch {
	case errors.Is(err, errNoSession):
		// Nothing to end; the cookie is cleared all the same.
	case err != nil:
		m.fail(w, r, err)
		return
	default:
		got := r.Header.Get(CSRFHeader)
		if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(s.csrf)) != 1 {
			writeError(w, http.StatusForbidden, "forbidden", msgCSRF)
			return
		}
		if err := m.end(r.Context(), id); err != nil {
			m.fail(w, r, err)
			return
		}
		m.log.InfoContext(r.Context(), "console sign-out", "actor", "admin:"+s.principal.Name)
	}
	http.SetCookie(w, m.cookie(r, "", -1))
	w.WriteHeader(http.StatusNoContent)
}

// cookie is the session cookie: HttpOnly (no script reads it), SameSite
// Strict (no other site's page sends it), Secure over TLS.
func (m *Sessions) cookie(r *http.Request, value string, maxAge int) *http.Cookie {
	return &http.Cookie{
		Name: CookieName, Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: m.secure || r.TLS != nil,
	}
}

func (m *Sessions) writeSession(w http.ResponseWriter, status int, s *session) {
	writeJSON(w, status, sessionBody{
		Name: s.principal.Name, Role: string(s.principal.Role), CSRFToken: s.csrf,
		ExpiresAt: m.expiresAt(s).UTC().Format(time.RFC3339),
	})
}

// fail answers a lookup or store error: 401 without a session, else 503
// (the sessions live in Redis).
func (m *Sessions) fail(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, errNoSession) {
		writeError(w, http.StatusUnauthorized, "unauthorized", msgNoSession)
		return
	}
	m.log.ErrorContext(r.Context(), "console session", "error", err)
	writeError(w, http.StatusServiceUnavailable, "store_unavailable", "the session store is unreachable; try again shortly")
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	var b errorBody
	b.Error.Code, b.Error.Message = code, msg
	writeJSON(w, status, b)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		status, data = http.StatusInternalServerError, []byte(`{"error":{"code":"internal","message":"encoding the response failed"}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(data, '\n'))
}
