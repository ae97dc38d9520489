package metering

import (
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/bedrock-gateway/gateway/internal/bedrock"
	"github.com/bedrock-gateway/gateway/internal/testutil/promtest"
)

// recordTraffic feeds the metrics what a gateway serving several teams,
// entitlements and operations would: successes with usage, client and
// upstream errors, rejections, quota levels, alerts and store trouble.
func recordTraffic(m *Metrics, round int) {
	type call struct {
		ent, team, account, model string
		op                        bedrock.Operation
		code                      int
		usage                     bedrock.Usage
	}
	calls := []call{
		{"support-llm", "development", "222222222222", haiku, bedrock.OpConverse, 200,
			bedrock.Usage{InputTokens: 1200, OutputTokens: 300, CacheReadTokens: 50, CacheWriteTokens: 20}},
		{"support-llm", "development", "222222222222", haiku, bedrock.OpConverseStream, 200,
			bedrock.Usage{InputTokens: 800, OutputTokens: 900}},
		{"support-llm", "data-science", "333333333333", haiku, bedrock.OpInvokeModel, 200,
			bedrock.Usage{InputTokens: 400, OutputTokens: 100}},
		{"support-llm", "data-science", "333333333333", haiku, bedrock.OpInvokeModelWithResponseStream, 503, bedrock.Usage{}},
		{"copy", "marketing", "444444444444", "amazon.nova-lite-v1:0", bedrock.OpConverse, 200,
			bedrock.Usage{InputTokens: 5000, OutputTokens: 700}},
		{"copy", "marketing", "444444444444", "amazon.nova-lite-v1:0", bedrock.OpConverse, 400, bedrock.Usage{}},
		{"copy", "marketing", "444444444444", "amazon.nova-lite-v1:0", bedrock.OpConverseStream, 429, bedrock.Usage{}},
		// Denied: the caller is not told which entitlement, nor is the label.
		{"", "marketing", "444444444444", "", bedrock.OpConverse, 403, bedrock.Usage{}},
	}
	for i := range 5 {
		for j, c := range calls {
			ms := time.Duration(1+i+j+round) * time.Millisecond
			r := Request{Entitlement: c.ent, Team: c.team, Account: c.account, Model: c.model, Op: c.op, Code: c.code,
				Duration: 40 * ms, Overhead: ms / 10, Usage: c.usage, HasUsage: c.usage != (bedrock.Usage{})}
			if c.code == 200 {
				r.TTFB = 8 * ms
			}
			m.Observe(r)
		}
	}
	m.Rejection("copy", "marketing", "444444444444", "requests_per_minute")
	m.Rejection("support-llm", "data-science", "333333333333", "monthly_cap_share")
	m.QuotaRemaining("support-llm", "entitlement", "support-llm", int64(900_000-1000*round))
	m.QuotaRemaining("support-llm", "share", "333333333333", int64(20_000-100*round))
	m.BudgetAlert("support-llm", 50)
	m.BudgetAlert("copy", 80+20*round)
	m.StoreError("settle")
	m.SetStoreDegraded(round == 0)
	m.SetStoreWiped(false)
	m.SetStorePersistence(true, round == 1)
	m.UpstreamFailure("reset")
	m.SetStateVersion(uint64(7 + round))
	m.Inflight().Set(float64(2 + round))
}

// deniedLabel is how the dashboard shows requests recorded without an
// entitlement (denied before the caller may learn which one it named).
const deniedLabel = "(denied or unauthenticated)"

// TestDashboardQueriesOnRealPrometheus runs a real Prometheus (Debian's
// prometheus package) scraping a metrics registry under test traffic that
// includes errors, rejections and denials, and evaluates every dashboard
// panel query: each must return data, and no NaN. It also checks that the
// server loads the alert rules, and that denied calls have a readable label.
func TestDashboardQueriesOnRealPrometheus(t *testing.T) {
	t.Parallel()
	dash := promtest.ReadDashboard(t, filepath.Join(deployDir, "grafana", "dashboards", "gateway.json"))
	m := NewMetrics(Options{})
	if err := m.RegisterPrices(testPrices(t)); err != nil {
		t.Fatal(err)
	}
	recordTraffic(m, 0)
	var mu sync.Mutex // serializes recording with scrapes so rounds are whole
	h := promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		h.ServeHTTP(w, r)
	}))
	defer srv.Close()
	prom := promtest.Start(t, strings.TrimPrefix(srv.URL, "http://"), filepath.Join(deployDir, "prometheus", "rules.yml"))

	// One scrape of the first round, then a second round of traffic and
	// two more scrapes, so rates and quantiles see increases.
	seen := prom.WaitScrapes(t, 1)
	mu.Lock()
	recordTraffic(m, 1)
	mu.Unlock()
	prom.WaitScrapes(t, seen+2)

	for name, expr := range dash.Variables {
		if _, err := prom.Check(expr); err != nil {
			t.Errorf("variable %s: %v", name, err)
		}
	}
	for name, expr := range dash.Panels {
		if _, err := prom.Check(promtest.Substitute(expr)); err != nil {
			t.Errorf("panel %s: %v", name, err)
		}
	}
	prom.CheckRulesLoaded(t)

	byEnt, err := prom.Check(promtest.Substitute(dash.Panels["Requests by entitlement (A)"]))
	if err != nil {
		t.Fatal(err)
	}
	denied := false
	for _, s := range byEnt {
		switch s.Metric["entitlement"] {
		case "":
			t.Errorf("Requests by entitlement: a series without a readable entitlement label: %v", s.Metric)
		case deniedLabel:
			denied = true
		}
	}
	if !denied {
		t.Errorf("Requests by entitlement: denied calls are not shown as %q: %v", deniedLabel, byEnt)
	}
}
