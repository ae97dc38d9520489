package server

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// consoleShim stands in for the console's session API, role enforcement and
// share preview (console contract, built on another branch) while they have
// not landed on this one: a proxy in front of the ops listener that turns a
// session cookie into the bearer token it was signed in with. The browser
// test uses it only when the gateway itself answers 404 at
// /console/api/session.
type consoleShim struct {
	ops    string // http://host:port of the ops listener
	tokens map[string][2]string
	mu     sync.Mutex
	live   map[string]shimSession
}

type shimSession struct{ token, name, role, csrf string }

func newConsoleShim(t *testing.T, ops string, tokens map[string][2]string) *httptest.Server {
	s := &consoleShim{ops: ops, tokens: tokens, live: map[string]shimSession{}}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return srv
}

func randHex() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func shimError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": code, "message": msg}})
}

func (s *consoleShim) session(r *http.Request) (shimSession, bool) {
	c, err := r.Cookie("bgw_session")
	if err != nil {
		return shimSession{}, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ss, ok := s.live[c.Value]
	return ss, ok
}

func (s *consoleShim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/console/api/session" {
		s.serveSession(w, r)
		return
	}
	ss, ok := s.session(r)
	if strings.HasPrefix(r.URL.Path, "/admin/") {
		if !ok {
			shimError(w, http.StatusUnauthorized, "unauthorized", "sign in")
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			if subtle.ConstantTimeCompare([]byte(r.Header.Get("X-CSRF-Token")), []byte(ss.csrf)) != 1 {
				shimError(w, http.StatusForbidden, "forbidden", "missing or wrong X-CSRF-Token")
				return
			}
			if ss.role == "viewer" && !strings.HasSuffix(r.URL.Path, "/shares/preview") {
				shimError(w, http.StatusForbidden, "Forbidden", "this needs the operator role; "+ss.name+" is a viewer")
				return
			}
		}
		if m := previewPath.FindStringSubmatch(r.URL.Path); m != nil && r.Method == http.MethodPost {
			s.preview(w, r, ss, m[1])
			return
		}
		if r.URL.Path == "/admin/v1/whoami" {
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]string{"name": ss.name, "role": ss.role})
			return
		}
	}
	target, _ := url.Parse(s.ops)
	rp := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(target)
		pr.Out.Header.Del("Cookie")
		if ok {
			pr.Out.Header.Set("Authorization", "Bearer "+ss.token)
		}
	}}
	rp.ServeHTTP(w, r)
}

func (s *consoleShim) serveSession(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	body := func(ss shimSession) map[string]string {
		return map[string]string{"name": ss.name, "role": ss.role, "csrf_token": ss.csrf, "expires_at": time.Now().Add(12 * time.Hour).UTC().Format(time.RFC3339)}
	}
	switch r.Method {
	case http.MethodPost:
		var req struct{ Token string }
		_ = json.NewDecoder(r.Body).Decode(&req)
		nr, ok := s.tokens[req.Token]
		if !ok {
			shimError(w, http.StatusUnauthorized, "unauthorized", "that token is not accepted")
			return
		}
		id := randHex()
		ss := shimSession{token: req.Token, name: nr[0], role: nr[1], csrf: randHex()}
		s.mu.Lock()
		s.live[id] = ss
		s.mu.Unlock()
		http.SetCookie(w, &http.Cookie{Name: "bgw_session", Value: id, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode})
		_ = json.NewEncoder(w).Encode(body(ss))
	case http.MethodGet:
		ss, ok := s.session(r)
		if !ok {
			shimError(w, http.StatusUnauthorized, "unauthorized", "not signed in")
			return
		}
		_ = json.NewEncoder(w).Encode(body(ss))
	case http.MethodDelete:
		if c, err := r.Cookie("bgw_session"); err == nil {
			s.mu.Lock()
			delete(s.live, c.Value)
			s.mu.Unlock()
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

var previewPath = regexp.MustCompile(`^/admin/v1/entitlements/([^/]+)/shares/preview$`)

// preview gives every row's verdict, as the contract's preview endpoint does
// (accounts and OUs of the organization, inside the scope, not twice, not
// already shared).
func (s *consoleShim) preview(w http.ResponseWriter, r *http.Request, ss shimSession, name string) {
	get := func(path string, out any) {
		req, _ := http.NewRequest(http.MethodGet, s.ops+path, nil)
		req.Header.Set("Authorization", "Bearer "+ss.token)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			defer resp.Body.Close()
			_ = json.NewDecoder(resp.Body).Decode(out)
		}
	}
	var org struct {
		Organization struct {
			ID       string
			Units    []struct{ ID, Parent string }
			Accounts []struct{ ID, Unit string }
		}
	}
	var ent struct {
		Entitlement struct {
			Scope  []string
			Shares []struct{ Target string }
		}
	}
	get("/admin/v1/organization", &org)
	get("/admin/v1/entitlements/"+name, &ent)
	parent := map[string]string{}
	for _, u := range org.Organization.Units {
		parent[u.ID] = u.Parent
	}
	for _, a := range org.Organization.Accounts {
		parent[a.ID] = a.Unit
	}
	inside := func(id string) bool {
		if len(ent.Entitlement.Scope) == 0 || slices.Contains(ent.Entitlement.Scope, org.Organization.ID) {
			return true
		}
		for cur, i := id, 0; cur != "" && i < 50; cur, i = parent[cur], i+1 {
			if slices.Contains(ent.Entitlement.Scope, cur) {
				return true
			}
		}
		return false
	}
	type row struct {
		Line          int    `json:"line,omitempty"`
		Target        string `json:"target"`
		MonthlyTokens int64  `json:"monthly_tokens"`
		Verdict       string `json:"verdict"`
		Reason        string `json:"reason,omitempty"`
	}
	var rows []row
	def, _ := strconv.ParseInt(r.URL.Query().Get("monthly_tokens"), 10, 64)
	if strings.HasPrefix(r.Header.Get("Content-Type"), "text/csv") {
		data, _ := io.ReadAll(r.Body)
		recs, _ := csv.NewReader(strings.NewReader(string(data))).ReadAll()
		for i, rec := range recs {
			t := strings.TrimSpace(rec[0])
			if i == 0 && !regexp.MustCompile(`^(\d|ou-|o-|r-)`).MatchString(t) {
				continue // header
			}
			m := def
			if len(rec) > 1 && strings.TrimSpace(rec[1]) != "" {
				m, _ = strconv.ParseInt(strings.TrimSpace(rec[1]), 10, 64)
			}
			rows = append(rows, row{Line: i + 1, Target: t, MonthlyTokens: m})
		}
	} else {
		var req struct {
			Targets       []string `json:"targets"`
			MonthlyTokens int64    `json:"monthly_tokens"`
		}
		_ = json.NewDecoder(r.Body).Decode(&req)
		for _, t := range req.Targets {
			rows = append(rows, row{Target: t, MonthlyTokens: req.MonthlyTokens})
		}
	}
	seen := map[string]bool{}
	accepted := 0
	for i := range rows {
		t := rows[i].Target
		_, known := parent[t]
		switch {
		case !regexp.MustCompile(`^(\d{12}|ou-[a-z0-9]+-[a-z0-9]+|o-[a-z0-9]+|r-[a-z0-9]+)$`).MatchString(t):
			rows[i].Verdict, rows[i].Reason = "refused", "malformed"
		case t != org.Organization.ID && !known && strings.HasPrefix(t, "ou-"):
			rows[i].Verdict, rows[i].Reason = "refused", "unknown OU"
		case t != org.Organization.ID && !known:
			rows[i].Verdict, rows[i].Reason = "refused", "unknown account"
		case !inside(t):
			rows[i].Verdict, rows[i].Reason = "refused", "outside scope"
		case seen[t]:
			rows[i].Verdict, rows[i].Reason = "refused", "duplicate"
		case slices.ContainsFunc(ent.Entitlement.Shares, func(s struct{ Target string }) bool { return s.Target == t }):
			rows[i].Verdict, rows[i].Reason = "refused", "already shared"
		default:
			rows[i].Verdict = "accepted"
			accepted++
		}
		seen[t] = true
	}
	offset, _ := strconv.Atoi(r.URL.Query().Get("offset"))
	limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
	if limit <= 0 {
		limit = 200
	}
	page := rows[min(offset, len(rows)):min(offset+limit, len(rows))]
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"total": len(rows), "accepted": accepted, "refused": len(rows) - accepted,
		"offset": offset, "limit": limit, "rows": page})
}
