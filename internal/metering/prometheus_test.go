package metering

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/bedrock-gateway/gateway/internal/bedrock"
	"github.com/bedrock-gateway/gateway/internal/testutil/wait"
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
	m.UpstreamFailure("reset")
	m.SetStateVersion(uint64(7 + round))
	m.Inflight().Set(float64(2 + round))
}

// panelQueries returns every panel target expression of the dashboard, with
// a name for messages, and the template variables' label_values queries.
func panelQueries(t *testing.T) (panels map[string]string, variables map[string]string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(deployDir, "grafana", "dashboards", "gateway.json"))
	if err != nil {
		t.Fatal(err)
	}
	type panel struct {
		ID      int    `json:"id"`
		Title   string `json:"title"`
		Type    string `json:"type"`
		Targets []struct {
			RefID string `json:"refId"`
			Expr  string `json:"expr"`
		} `json:"targets"`
		Panels []json.RawMessage `json:"panels"`
	}
	var dash struct {
		Panels     []json.RawMessage `json:"panels"`
		Templating struct {
			List []struct {
				Name       string `json:"name"`
				Type       string `json:"type"`
				Definition string `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	panels, variables = map[string]string{}, map[string]string{}
	var walk func([]json.RawMessage)
	walk = func(raws []json.RawMessage) {
		for _, raw := range raws {
			var p panel
			if err := json.Unmarshal(raw, &p); err != nil {
				t.Fatal(err)
			}
			for _, tg := range p.Targets {
				if tg.Expr == "" {
					t.Errorf("panel %q target %s has no expression", p.Title, tg.RefID)
					continue
				}
				panels[fmt.Sprintf("%s (%s)", p.Title, tg.RefID)] = tg.Expr
			}
			if p.Type != "row" && len(p.Targets) == 0 {
				t.Errorf("panel %q has no targets", p.Title)
			}
			walk(p.Panels)
		}
	}
	walk(dash.Panels)
	labelValues := regexp.MustCompile(`^label_values\((\w+),\s*(\w+)\)$`)
	for _, v := range dash.Templating.List {
		if v.Type != "query" {
			continue
		}
		m := labelValues.FindStringSubmatch(v.Definition)
		if m == nil {
			t.Errorf("variable %s: query %q is not label_values(metric, label)", v.Name, v.Definition)
			continue
		}
		variables["$"+v.Name] = fmt.Sprintf("group by (%s) (%s)", m[2], m[1])
	}
	return panels, variables
}

// substitute replaces Grafana's variables the way Grafana would for "All"
// selections and a short time range.
func substitute(expr string) string {
	return strings.NewReplacer(
		"$__rate_interval", "1m",
		"$__range", "5m",
		"$__interval", "1s",
		"$entitlement", ".*",
		"$team", ".*",
	).Replace(expr)
}

// promServer is a real Prometheus process.
type promServer struct {
	url string
	cmd *exec.Cmd
	out *lockedWriter
}

func startPrometheus(t *testing.T, target string) *promServer {
	t.Helper()
	bin := prometheusTool(t, "prometheus")
	rules, err := filepath.Abs(filepath.Join(deployDir, "prometheus", "rules.yml"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "prometheus.yml")
	config := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
  - %q
scrape_configs:
  - job_name: bedrock-gateway
    static_configs:
      - targets: [%q]
`, rules, target)
	if err := os.WriteFile(cfg, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		port, err := freeLoopbackPort()
		if err != nil {
			t.Fatal(err)
		}
		addr := "127.0.0.1:" + strconv.Itoa(port)
		out := &lockedWriter{w: &bytes.Buffer{}}
		cmd := exec.Command(bin, "--config.file="+cfg, "--storage.tsdb.path="+filepath.Join(dir, "data"+strconv.Itoa(attempt)),
			"--web.listen-address="+addr, "--log.level=warn")
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			t.Fatalf("starting prometheus: %v", err)
		}
		p := &promServer{url: "http://" + addr, cmd: cmd, out: out}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		stop := func() {
			_ = cmd.Process.Signal(os.Interrupt)
			select {
			case <-exited:
			case <-time.After(10 * time.Second):
				_ = cmd.Process.Kill()
				<-exited
			}
		}
		if lastErr = p.waitReady(exited); lastErr == nil {
			t.Cleanup(stop)
			return p
		}
		stop()
	}
	t.Fatalf("prometheus did not start: %v", lastErr)
	return nil
}

func (p *promServer) waitReady(exited <-chan error) error {
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return fmt.Errorf("prometheus exited: %v\n%s", err, p.out.String())
		default:
		}
		resp, err := http.Get(p.url + "/-/ready")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond) // polling readiness
	}
	return fmt.Errorf("not ready within 20s\n%s", p.out.String())
}

type promSample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

// query runs an instant query and returns its vector (a scalar becomes a
// one-sample vector).
func (p *promServer) query(q string) ([]promSample, error) {
	resp, err := http.Get(p.url + "/api/v1/query?query=" + url.QueryEscape(q))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var body struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string          `json:"resultType"`
			Result     json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, fmt.Errorf("decoding answer: %w", err)
	}
	if body.Status != "success" {
		return nil, fmt.Errorf("query failed: %s", body.Error)
	}
	switch body.Data.ResultType {
	case "vector":
		var v []promSample
		err := json.Unmarshal(body.Data.Result, &v)
		return v, err
	case "scalar":
		var s [2]any
		err := json.Unmarshal(body.Data.Result, &s)
		return []promSample{{Value: s}}, err
	default:
		return nil, fmt.Errorf("result type %s", body.Data.ResultType)
	}
}

func (s promSample) float() float64 {
	str, _ := s.Value[1].(string)
	f, err := strconv.ParseFloat(str, 64)
	if err != nil {
		return math.NaN()
	}
	return f
}

// waitSamples polls until the gateway job has at least n samples of a
// gauge in the last minute, i.e. n scrapes were ingested.
func (p *promServer) waitSamples(t *testing.T, n int) int {
	t.Helper()
	var got int
	wait.Until(t, fmt.Sprintf("%d scrapes ingested", n), 20*time.Second, func() error {
		v, err := p.query(`count_over_time(gateway_inflight_requests{job="bedrock-gateway"}[1m])`)
		if err == nil && len(v) == 1 && int(v[0].float()) >= n {
			got = int(v[0].float())
			return nil
		}
		return fmt.Errorf("(%v, %v)\n%s", v, err, p.out.String())
	})
	return got
}

// TestDashboardQueriesOnRealPrometheus runs a real Prometheus (Debian's
// prometheus package) scraping a metrics registry under test traffic, and
// evaluates every dashboard panel query: each must return data, and not
// only NaN. It also checks that the server loads the alert rules.
func TestDashboardQueriesOnRealPrometheus(t *testing.T) {
	t.Parallel()
	panels, variables := panelQueries(t)
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
	prom := startPrometheus(t, strings.TrimPrefix(srv.URL, "http://"))

	// One scrape of the first round, then a second round of traffic and
	// two more scrapes, so rates and quantiles see increases.
	seen := prom.waitSamples(t, 1)
	mu.Lock()
	recordTraffic(m, 1)
	mu.Unlock()
	prom.waitSamples(t, seen+2)

	for name, expr := range variables {
		checkQuery(t, prom, "variable "+name, expr)
	}
	for name, expr := range panels {
		checkQuery(t, prom, "panel "+name, substitute(expr))
	}
	checkRulesLoaded(t, prom)
}

func checkQuery(t *testing.T, prom *promServer, name, expr string) {
	t.Helper()
	if strings.Contains(expr, "$") {
		t.Errorf("%s: unsubstituted variable in %s", name, expr)
		return
	}
	v, err := prom.query(expr)
	if err != nil {
		t.Errorf("%s: %s: %v", name, expr, err)
		return
	}
	finite := 0
	for _, s := range v {
		if f := s.float(); !math.IsNaN(f) && !math.IsInf(f, 0) {
			finite++
		}
	}
	if finite == 0 {
		t.Errorf("%s: no data (%d samples, none finite) for %s", name, len(v), expr)
	}
}

func checkRulesLoaded(t *testing.T, prom *promServer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, prom.url+"/api/v1/rules", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Data struct {
			Groups []struct {
				Rules []struct {
					Name      string `json:"name"`
					Health    string `json:"health"`
					LastError string `json:"lastError"`
				} `json:"rules"`
			} `json:"groups"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, g := range body.Data.Groups {
		for _, r := range g.Rules {
			n++
			if r.Health == "err" {
				t.Errorf("rule %s: %s", r.Name, r.LastError)
			}
		}
	}
	if n == 0 {
		t.Error("prometheus loaded no rules")
	}
}

func freeLoopbackPort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (l *lockedWriter) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.String()
}
