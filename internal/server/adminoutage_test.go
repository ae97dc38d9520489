package server

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/bedrock-gateway/gateway/internal/sim"
	"github.com/bedrock-gateway/gateway/internal/testutil/redistest"
	"github.com/bedrock-gateway/gateway/internal/testutil/wait"
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

// TestIdleReplicasNoticeOutage: replicas without traffic notice that Redis is
// down (and back) on their own: /readyz and gateway_store_degraded agree on
// every replica within seconds.
func TestIdleReplicasNoticeOutage(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	up := newUpstream(t, sim.Options{})
	a := startGateway(t, gatewayOptions{redis: rs.URL(), upstream: up, stateYAML: baseState})
	b := startGateway(t, gatewayOptions{redis: rs.URL(), upstream: up})
	degraded := func(g *gateway) bool {
		m := gatheredGauge(t, g, "gateway_store_degraded")
		return m != nil && m.GetGauge().GetValue() == 1 && strings.HasPrefix(get(t, "http://"+g.OpsAddr()+"/readyz"), "degraded")
	}
	rs.Stop()
	for _, g := range []*gateway{a, b} {
		wait.For(t, "an idle replica to notice the outage", 30*time.Second, func() bool { return degraded(g) })
	}
	rs.Restart()
	for _, g := range []*gateway{a, b} {
		wait.For(t, "an idle replica to notice Redis is back", 30*time.Second, func() bool { return !degraded(g) })
	}
}
