package server

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/bedrock-gateway/gateway/internal/sim"
	"github.com/bedrock-gateway/gateway/internal/testutil/redistest"
)

// While Redis is down the admin API says so: 503 with the cause, not a 500
// "internal error; see the gateway log".
func TestAdminAPIWhenRedisIsDown(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	up := newUpstream(t, sim.Options{})
	g := startGateway(t, gatewayOptions{redis: rs.URL(), upstream: up, stateYAML: baseState})
	rs.Stop()
	for _, c := range []struct{ method, path, body string }{
		{"GET", "/admin/v1/entitlements", ""},
		{"POST", "/admin/v1/credentials", `{"account":"222222222222","kind":"sigv4","label":"x"}`},
	} {
		req, _ := http.NewRequest(c.method, "http://"+g.OpsAddr()+c.path, strings.NewReader(c.body))
		req.Header.Set("Authorization", "Bearer "+adminToken)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(b), "state store unreachable") ||
			!strings.Contains(string(b), "store_unavailable") {
			t.Errorf("%s %s with Redis down: %d %s", c.method, c.path, resp.StatusCode, b)
		}
	}
}
