package server

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	brtypes "github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"

	"github.com/bedrock-gateway/gateway/internal/sim"
	"github.com/bedrock-gateway/gateway/internal/testutil/promtest"
	"github.com/bedrock-gateway/gateway/internal/testutil/redistest"
)

// dashboardState shares two capped entitlements; idle is called only before
// the first scrape, so its series exist but do not move in the rate window,
// as for an entitlement nobody used in the last minutes.
const dashboardState = baseState + `
entitlements:
  - {name: support, model: "` + haiku + `", limits: {monthly_tokens: 100000000}, shares: [{target: o-testorg0001}]}
  - {name: idle, model: "` + haiku + `", limits: {monthly_tokens: 100000000}, shares: [{target: o-testorg0001}]}
`

const dashboardPrices = `prices:
  - {model: "` + haiku + `", input: 0.8, output: 4, cache_read: 0.08, cache_write: 1}
`

// dashboardAllowedEmpty lists the panels (title (refId)) that may show "No
// data" on a healthy gateway, with the reason. Keep it short: an operator
// reads "No data" as "the dashboard is broken".
var dashboardAllowedEmpty = map[string]string{}

// TestDashboardOnHealthyGateway runs a real gateway (simulator upstream, real
// redis-server) serving healthy traffic from the official SDK (no errors, no
// rejections), lets a real Prometheus scrape its /metrics with the shipped
// alert rules, and evaluates every query of the shipped Grafana dashboard:
// each must return at least one sample and no NaN, so a healthy gateway shows
// 0, not "No data", for rejections, upstream failures, budget alerts and
// store errors.
func TestDashboardOnHealthyGateway(t *testing.T) {
	t.Parallel()
	deploy := filepath.Join("..", "..", "deploy")
	dash := promtest.ReadDashboard(t, filepath.Join(deploy, "grafana", "dashboards", "gateway.json"))
	for name, reason := range dashboardAllowedEmpty {
		if _, ok := dash.Panels[name]; !ok {
			t.Errorf("allowed-empty panel %s (%s) is not on the dashboard", name, reason)
		}
	}
	rs := redistest.Start(t)
	up := newUpstream(t, sim.Options{})
	prices := filepath.Join(t.TempDir(), "prices.yaml")
	if err := os.WriteFile(prices, []byte(dashboardPrices), 0o600); err != nil {
		t.Fatal(err)
	}
	g := startGateway(t, gatewayOptions{redis: rs.URL(), upstream: up, stateYAML: dashboardState, args: []string{"--prices-file", prices}})
	prom := promtest.Start(t, g.OpsAddr(), filepath.Join(deploy, "prometheus", "rules.yml"))

	// Traffic, a scrape, more traffic and two more scrapes: counters created
	// by the first round increase in the window rates and quantiles look at.
	clients := []*bedrockruntime.Client{g.client(t, devAKID, devSecret), g.client(t, dsAKID, dsSecret)}
	traffic := func(first bool) {
		t.Helper()
		ctx := context.Background()
		if first {
			if _, err := converse(ctx, clients[0], "idle", 16); err != nil {
				t.Fatalf("Converse: %v", err)
			}
		}
		for _, c := range clients {
			if _, err := converse(ctx, c, "support", 16); err != nil {
				t.Fatalf("Converse: %v", err)
			}
			out, err := c.ConverseStream(ctx, &bedrockruntime.ConverseStreamInput{ModelId: aws.String("support"),
				Messages: userMessage("stream to me"), InferenceConfig: &brtypes.InferenceConfiguration{MaxTokens: aws.Int32(16)}})
			if err != nil {
				t.Fatalf("ConverseStream: %v", err)
			}
			for range out.GetStream().Events() {
			}
			if err := out.GetStream().Err(); err != nil {
				t.Fatalf("ConverseStream events: %v", err)
			}
			_ = out.GetStream().Close()
		}
	}
	traffic(true)
	seen := prom.WaitScrapes(t, 1)
	traffic(false)
	prom.WaitScrapes(t, seen+2)

	for name, expr := range dash.Variables {
		if _, err := prom.Check(expr); err != nil {
			t.Errorf("variable %s: %v", name, err)
		}
	}
	for name, expr := range dash.Panels {
		_, err := prom.Check(promtest.Substitute(expr))
		if reason, ok := dashboardAllowedEmpty[name]; ok {
			t.Logf("panel %s may be empty (%s): %v", name, reason, err)
			continue
		}
		if err != nil {
			t.Errorf("panel %s: %v", name, err)
		}
	}
	prom.CheckRulesLoaded(t)
}
