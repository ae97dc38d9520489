package server

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/bedrock-gateway/gateway/internal/console"
	"github.com/bedrock-gateway/gateway/internal/sim"
	"github.com/bedrock-gateway/gateway/internal/testutil/redistest"
)

// TestConsoleSessionAnyReplica: a console session opened on one replica's
// ops listener calls the admin API of another (sessions live in Redis), and
// the cookie honours --behind-tls-proxy (Secure) and --console-session-idle.
func TestConsoleSessionAnyReplica(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	up := newUpstream(t, sim.Options{})
	a := startGateway(t, gatewayOptions{redis: rs.URL(), upstream: up, stateYAML: baseState,
		args: []string{"--behind-tls-proxy", "--console-session-idle", "10m"}})
	b := startGateway(t, gatewayOptions{redis: rs.URL(), upstream: up})

	resp, err := http.Post("http://"+a.OpsAddr()+console.SessionPath, "application/json", strings.NewReader(`{"token":"`+adminToken+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("sign-in: %d %s", resp.StatusCode, body)
	}
	var sb struct {
		ExpiresAt time.Time `json:"expires_at"`
	}
	if err := json.Unmarshal(body, &sb); err != nil {
		t.Fatal(err)
	}
	// --console-session-idle 10m: the session ends 10 minutes after its
	// last use (the answer is in whole seconds, rounded down).
	if limit := time.Now().Add(10 * time.Minute); sb.ExpiresAt.After(limit) {
		t.Fatalf("expires_at %v is later than the 10 minute idle time allows (%v)", sb.ExpiresAt, limit)
	}
	var cookie *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == console.CookieName {
			cookie = c
		}
	}
	if cookie == nil || !cookie.Secure || !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode {
		t.Fatalf("cookie %+v: want Secure (behind a TLS proxy), HttpOnly, SameSite=Strict", cookie)
	}

	req, err := http.NewRequest(http.MethodGet, "http://"+b.OpsAddr()+"/admin/v1/whoami", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.AddCookie(&http.Cookie{Name: cookie.Name, Value: cookie.Value})
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"role": "admin"`) {
		t.Fatalf("whoami on the other replica: %d %s", resp.StatusCode, body)
	}
}
