// Package promtest runs a real Prometheus server (Debian's prometheus
// package) for tests, and evaluates the Grafana dashboard's panel queries
// against it the way Grafana would. Without the binary the test is skipped
// with instructions, except under CI=true, where it fails.
package promtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
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

	"github.com/bedrock-gateway/gateway/internal/testutil/prereq"
	"github.com/bedrock-gateway/gateway/internal/testutil/wait"
)

// Job is the scrape job name the dashboard's "Replicas up" panel and the
// example scrape configuration use.
const Job = "bedrock-gateway"

// Tool returns the path of a binary of Debian's prometheus package
// (promtool, prometheus), skipping the test when it is missing, except under
// CI=true, where it fails.
func Tool(t testing.TB, name string) string {
	t.Helper()
	return prereq.Program(t, name, "apt-get install prometheus")
}

// Server is a real Prometheus process scraping one target every second.
type Server struct {
	URL string
	out *lockedBuffer
}

// Start runs Prometheus scraping target (host:port, path /metrics) as job
// Job, loading the rules file when rules is not empty. It is stopped when
// the test ends.
func Start(t testing.TB, target, rules string) *Server {
	t.Helper()
	bin := Tool(t, "prometheus")
	dir := t.TempDir()
	cfg := filepath.Join(dir, "prometheus.yml")
	config := "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n"
	if rules != "" {
		abs, err := filepath.Abs(rules)
		if err != nil {
			t.Fatal(err)
		}
		config += fmt.Sprintf("rule_files:\n  - %q\n", abs)
	}
	config += fmt.Sprintf("scrape_configs:\n  - job_name: %s\n    static_configs:\n      - targets: [%q]\n", Job, target)
	if err := os.WriteFile(cfg, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	var lastErr error
	// A free port can be taken between finding it and Prometheus binding it.
	for attempt := 0; attempt < 3; attempt++ {
		port, err := freeLoopbackPort()
		if err != nil {
			t.Fatal(err)
		}
		addr := "127.0.0.1:" + strconv.Itoa(port)
		out := &lockedBuffer{}
		cmd := exec.Command(bin, "--config.file="+cfg, "--storage.tsdb.path="+filepath.Join(dir, "data"+strconv.Itoa(attempt)),
			"--web.listen-address="+addr, "--log.level=warn")
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			t.Fatalf("starting prometheus: %v", err)
		}
		s := &Server{URL: "http://" + addr, out: out}
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
		if lastErr = s.waitReady(exited); lastErr == nil {
			t.Cleanup(stop)
			return s
		}
		stop()
	}
	t.Fatalf("prometheus did not start: %v", lastErr)
	return nil
}

func (s *Server) waitReady(exited <-chan error) error {
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return fmt.Errorf("prometheus exited: %v\n%s", err, s.out.String())
		default:
		}
		resp, err := http.Get(s.URL + "/-/ready")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond) // polling readiness
	}
	return fmt.Errorf("not ready within 20s\n%s", s.out.String())
}

// Sample is one element of an instant vector.
type Sample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

// Float returns the sample's value (NaN when it does not parse).
func (s Sample) Float() float64 {
	str, _ := s.Value[1].(string)
	f, err := strconv.ParseFloat(str, 64)
	if err != nil {
		return math.NaN()
	}
	return f
}

// Query runs an instant query and returns its vector (a scalar becomes a
// one-sample vector).
func (s *Server) Query(q string) ([]Sample, error) {
	resp, err := http.Get(s.URL + "/api/v1/query?query=" + url.QueryEscape(q))
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
		var v []Sample
		err := json.Unmarshal(body.Data.Result, &v)
		return v, err
	case "scalar":
		var sc [2]any
		err := json.Unmarshal(body.Data.Result, &sc)
		return []Sample{{Value: sc}}, err
	default:
		return nil, fmt.Errorf("result type %s", body.Data.ResultType)
	}
}

// WaitScrapes polls until the job has at least n samples of the in-flight
// gauge (always exported) in the last minute, i.e. n scrapes were ingested,
// and returns how many there are.
func (s *Server) WaitScrapes(t testing.TB, n int) int {
	t.Helper()
	var got int
	wait.Until(t, fmt.Sprintf("%d scrapes ingested", n), 30*time.Second, func() error {
		v, err := s.Query(fmt.Sprintf(`count_over_time(gateway_inflight_requests{job=%q}[1m])`, Job))
		if err == nil && len(v) == 1 && int(v[0].Float()) >= n {
			got = int(v[0].Float())
			return nil
		}
		return fmt.Errorf("(%v, %v)\n%s", v, err, s.out.String())
	})
	return got
}

// grafanaVariable matches what Grafana would interpolate: $name, ${name},
// [[name]]; a regular expression's "$" anchor is left alone.
var grafanaVariable = regexp.MustCompile(`\$\w|\$\{|\[\[\w`)

// Check evaluates expr and returns its samples, or an error when it fails,
// returns nothing, or returns a NaN or infinite value: a panel would show
// "No data" or "NaN".
func (s *Server) Check(expr string) ([]Sample, error) {
	if grafanaVariable.MatchString(expr) {
		return nil, fmt.Errorf("unsubstituted variable in %s", expr)
	}
	v, err := s.Query(expr)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", expr, err)
	}
	if len(v) == 0 {
		return nil, fmt.Errorf("no data for %s", expr)
	}
	for _, sm := range v {
		if f := sm.Float(); math.IsNaN(f) || math.IsInf(f, 0) {
			return v, fmt.Errorf("%v for %v in %s", sm.Value[1], sm.Metric, expr)
		}
	}
	return v, nil
}

// CheckRulesLoaded fails the test when Prometheus loaded no rules or one of
// them fails to evaluate.
func (s *Server) CheckRulesLoaded(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/api/v1/rules", nil)
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

// Dashboard is the queries of a Grafana dashboard file.
type Dashboard struct {
	// Panels maps "title (refId)" to the target's expression, for every
	// target of every panel, rows' nested panels included.
	Panels map[string]string
	// Variables maps "$name" to a query listing the values of the template
	// variable (its label_values(metric, label) definition).
	Variables map[string]string
}

// ReadDashboard reads a Grafana dashboard JSON file, failing the test on a
// panel without targets, a target without an expression or a template
// variable that is not label_values(metric, label).
func ReadDashboard(t testing.TB, path string) Dashboard {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	type panel struct {
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
	d := Dashboard{Panels: map[string]string{}, Variables: map[string]string{}}
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
				d.Panels[fmt.Sprintf("%s (%s)", p.Title, tg.RefID)] = tg.Expr
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
		d.Variables["$"+v.Name] = fmt.Sprintf("group by (%s) (%s)", m[2], m[1])
	}
	return d
}

// Substitute replaces Grafana's variables the way Grafana would for "All"
// selections and a short time range.
func Substitute(expr string) string {
	return strings.NewReplacer(
		"$__rate_interval", "1m",
		"$__range", "5m",
		"$__interval", "1s",
		"$entitlement", ".*",
		"$team", ".*",
	).Replace(expr)
}

func freeLoopbackPort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// lockedBuffer collects Prometheus's output, written by exec's copying
// goroutine and read by the test.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
