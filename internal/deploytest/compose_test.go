package deploytest

import (
	"bufio"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/bedrock-gateway/gateway/internal/config"
	"github.com/bedrock-gateway/gateway/internal/state"
)

// words is a compose value given either as a list or as one string.
type words []string

func (w *words) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*w = strings.Fields(n.Value)
		return nil
	}
	var l []string
	if err := n.Decode(&l); err != nil {
		return err
	}
	*w = l
	return nil
}

// envMap is compose's environment, given as a mapping or a list of K=V.
type envMap map[string]string

func (e *envMap) UnmarshalYAML(n *yaml.Node) error {
	*e = envMap{}
	if n.Kind == yaml.SequenceNode {
		var l []string
		if err := n.Decode(&l); err != nil {
			return err
		}
		for _, kv := range l {
			k, v, _ := strings.Cut(kv, "=")
			(*e)[k] = v
		}
		return nil
	}
	var m map[string]string
	if err := n.Decode(&m); err != nil {
		return err
	}
	for k, v := range m {
		(*e)[k] = v
	}
	return nil
}

type composeService struct {
	Image       string   `yaml:"image"`
	Build       any      `yaml:"build"`
	Command     words    `yaml:"command"`
	Environment envMap   `yaml:"environment"`
	Volumes     []string `yaml:"volumes"`
	Ports       []string `yaml:"ports"`
	ReadOnly    bool     `yaml:"read_only"`
	Healthcheck *struct {
		Test words `yaml:"test"`
	} `yaml:"healthcheck"`
}

type composeFile struct {
	Services map[string]*composeService `yaml:"services"`
	Volumes  map[string]any             `yaml:"volumes"`
}

var interpolationRe = regexp.MustCompile(`\$\{([A-Za-z0-9_]+)(?::?-([^}]*))?\}`)

// interpolate applies compose's ${VAR:-default} with an empty shell
// environment, as a fresh checkout gets it.
func interpolate(s string) string {
	return interpolationRe.ReplaceAllString(s, "$2")
}

// gatewayService is a compose service running the gateway image, resolved.
type gatewayService struct {
	name string
	svc  *composeService
	args []string // subcommand and flags
	env  map[string]string
	cfg  *config.Serve // for serve
	// ports the service listens on: data and ops for serve, data for sim.
	data, ops string
}

type composeStack struct {
	dir      string
	file     composeFile
	gateways map[string]*gatewayService
}

func loadCompose(t *testing.T) *composeStack {
	t.Helper()
	root := repoRoot(t)
	dir := filepath.Join(root, "deploy", "compose")
	data, err := os.ReadFile(filepath.Join(dir, "compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	st := &composeStack{dir: dir, gateways: map[string]*gatewayService{}}
	if err := yaml.Unmarshal(data, &st.file); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	for name, svc := range st.file.Services {
		for i := range svc.Command {
			svc.Command[i] = interpolate(svc.Command[i])
		}
		for k, v := range svc.Environment {
			svc.Environment[k] = interpolate(v)
		}
		if svc.Build == nil && !strings.HasPrefix(svc.Image, "bedrock-gateway") {
			continue
		}
		g := &gatewayService{name: name, svc: svc, args: svc.Command, env: svc.Environment}
		if len(g.args) == 0 {
			g.args = []string{"serve"} // the image's CMD
		}
		st.gateways[name] = g
	}
	return st
}

// volumeTargets maps each mount target of svc to its source, made absolute
// for bind mounts.
func (c *composeStack) volumeTargets(svc *composeService) map[string]string {
	out := map[string]string{}
	for _, v := range svc.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) < 2 {
			continue
		}
		src := parts[0]
		if strings.HasPrefix(src, ".") || strings.HasPrefix(src, "/") {
			src = filepath.Join(c.dir, src)
		}
		out[parts[1]] = src
	}
	return out
}

// checkProbe checks a healthcheck test that runs the image's probe: its URL
// (or the probe's default) must name a local port the service listens on
// and, for the gateway, an ops endpoint.
func checkProbe(t *testing.T, where string, test []string, env map[string]string, port string, paths []string) {
	t.Helper()
	if len(test) < 2 || test[0] != "CMD" || test[1] != "/healthcheck" {
		t.Errorf("%s: healthcheck %q, want [CMD /healthcheck URL]", where, test)
		return
	}
	target := "http://127.0.0.1:9090/healthz"
	if ops := env["GATEWAY_OPS_LISTEN"]; ops != "" {
		target = "http://127.0.0.1:" + portOf(t, ops) + "/healthz"
	}
	if len(test) > 2 {
		target = test[2]
	}
	u, err := url.Parse(target)
	if err != nil {
		t.Errorf("%s: healthcheck URL %q: %v", where, target, err)
		return
	}
	if u.Hostname() != "127.0.0.1" || u.Port() != port || !slices.Contains(paths, u.Path) {
		t.Errorf("%s: healthcheck probes %s, want 127.0.0.1:%s and one of %v", where, target, port, paths)
	}
}

func TestComposeGateways(t *testing.T) {
	t.Parallel()
	root := repoRoot(t)
	s := binarySchema(t)
	c := loadCompose(t)
	var serves, sims []*gatewayService
	for _, name := range keys(c.gateways) {
		g := c.gateways[name]
		where := "compose service " + name
		s.checkCommand(t, where, g.args)
		for k := range g.env {
			if strings.HasPrefix(k, "GATEWAY_") && !s.env[k] {
				t.Errorf("%s: %s is not read by the gateway", where, k)
			}
		}
		targets := c.volumeTargets(g.svc)
		switch g.args[0] {
		case "serve":
			cfg, err := loadServe(g.args[1:], g.env)
			if err != nil {
				t.Errorf("%s: gateway serve rejects its configuration: %v", where, err)
				continue
			}
			g.cfg, g.data, g.ops = cfg, portOf(t, cfg.Listen), portOf(t, cfg.OpsListen)
			serves = append(serves, g)
			if g.svc.Healthcheck == nil {
				t.Errorf("%s: no healthcheck", where)
			} else {
				checkProbe(t, where, g.svc.Healthcheck.Test, g.env, g.ops, probePaths)
			}
			for _, p := range g.svc.Ports {
				if cp := containerPort(p); cp != g.data && cp != g.ops {
					t.Errorf("%s: publishes container port %s; the gateway listens on %s and %s", where, cp, g.data, g.ops)
				}
			}
			if cfg.Bootstrap != "" {
				src, ok := targets[cfg.Bootstrap]
				if !ok {
					t.Errorf("%s: bootstrap file %s is not mounted", where, cfg.Bootstrap)
				} else {
					checkStateFile(t, where, src, g.env)
				}
			}
			if cfg.SpillFile != "" && g.svc.ReadOnly {
				if _, ok := targets[path.Dir(cfg.SpillFile)]; !ok {
					t.Errorf("%s: read-only container, but the spill file's directory %s is not a volume", where, path.Dir(cfg.SpillFile))
				}
			}
			if cfg.UpstreamEndpoint != "" {
				u, _ := url.Parse(cfg.UpstreamEndpoint)
				up, ok := c.gateways[u.Hostname()]
				if !ok || up.args[0] != "sim" {
					t.Errorf("%s: upstream %s is not the simulator service", where, cfg.UpstreamEndpoint)
				} else if want := portOf(t, flagValue(up.args, "listen", s.flags["sim"]["listen"])); u.Port() != want {
					t.Errorf("%s: upstream port %s, the simulator listens on %s", where, u.Port(), want)
				}
				if g.env["AWS_ACCESS_KEY_ID"] != flagValue(up.args, "hub-access-key-id", "") ||
					g.env["AWS_SECRET_ACCESS_KEY"] != up.env["GATEWAY_SIM_SECRET_ACCESS_KEY"] {
					t.Errorf("%s: signs with a hub key other than the one the simulator %s verifies", where, u.Hostname())
				}
			}
		case "sim":
			g.data = portOf(t, flagValue(g.args, "listen", s.flags["sim"]["listen"]))
			sims = append(sims, g)
			if g.svc.Healthcheck == nil {
				t.Errorf("%s: no healthcheck (the image's probes the gateway's ops port)", where)
			} else {
				checkProbe(t, where, g.svc.Healthcheck.Test, g.env, g.data, []string{"/foundation-models"})
			}
		}
		for target, src := range targets {
			if filepath.IsAbs(src) {
				requireFile(t, root, src, where+" volume "+target)
			}
		}
	}
	if len(serves) < 2 || len(sims) != 1 {
		t.Fatalf("compose runs %d gateway replicas and %d simulators; want at least 2 and 1", len(serves), len(sims))
	}
	checkHAProxy(t, c, serves)
	checkComposePrometheus(t, root, c, serves)
	checkComposeGrafana(t, root, c)
	checkComposeRedis(t, c, serves)
}

func containerPort(mapping string) string {
	mapping, _, _ = strings.Cut(mapping, "/")
	return mapping[strings.LastIndexByte(mapping, ':')+1:]
}

// checkStateFile loads, resolves, normalizes and validates a state file the
// way the gateway does at start.
func checkStateFile(t *testing.T, where, file string, env map[string]string) {
	t.Helper()
	st, err := state.LoadFile(file)
	if err != nil {
		t.Errorf("%s: %v", where, err)
		return
	}
	if err := st.ResolveSecrets(func(k string) (string, bool) { v, ok := env[k]; return v, ok }); err != nil {
		t.Errorf("%s: state file %s: %v", where, file, err)
		return
	}
	st.Normalize()
	if err := st.Validate(); err != nil {
		t.Errorf("%s: state file %s is invalid: %v", where, file, err)
	}
}

// checkHAProxy: every backend server is a gateway replica, on its data port,
// health-checked on its ops port at an ops path; every replica is a server.
func checkHAProxy(t *testing.T, c *composeStack, serves []*gatewayService) {
	t.Helper()
	lb, ok := c.file.Services["lb"]
	if !ok {
		t.Fatal("compose: no lb service")
	}
	cfgPath := c.volumeTargets(lb)["/usr/local/etc/haproxy/haproxy.cfg"]
	f, err := os.Open(cfgPath)
	if err != nil {
		t.Fatalf("haproxy.cfg: %v", err)
	}
	defer f.Close()
	var checkPath, checkPort string
	servers := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		switch {
		case len(fields) >= 4 && fields[0] == "option" && fields[1] == "httpchk":
			checkPath = fields[len(fields)-1]
		case fields[0] == "default-server" || fields[0] == "server":
			if p := flagAfter(fields, "port"); p != "" {
				checkPort = p
			}
			if fields[0] == "server" && len(fields) >= 3 {
				servers[fields[1]] = fields[2]
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(probePaths, checkPath) {
		t.Errorf("haproxy.cfg: health check path %q, want one of %v", checkPath, probePaths)
	}
	for _, g := range serves {
		addr, ok := servers[g.name]
		if !ok {
			t.Errorf("haproxy.cfg: no server for replica %s", g.name)
			continue
		}
		if addr != g.name+":"+g.data {
			t.Errorf("haproxy.cfg: server %s at %s, want %s:%s (its data port)", g.name, addr, g.name, g.data)
		}
		if checkPort != g.ops {
			t.Errorf("haproxy.cfg: health checks go to port %s, %s's ops port is %s", checkPort, g.name, g.ops)
		}
	}
	if len(servers) != len(serves) {
		t.Errorf("haproxy.cfg: %d servers for %d replicas", len(servers), len(serves))
	}
}

func flagAfter(fields []string, name string) string {
	for i := 0; i+1 < len(fields); i++ {
		if fields[i] == name {
			return fields[i+1]
		}
	}
	return ""
}

// checkComposePrometheus: Prometheus scrapes /metrics on every replica's ops
// port and loads rule files that are mounted.
func checkComposePrometheus(t *testing.T, root string, c *composeStack, serves []*gatewayService) {
	t.Helper()
	prom, ok := c.file.Services["prometheus"]
	if !ok {
		t.Fatal("compose: no prometheus service")
	}
	targets := c.volumeTargets(prom)
	data, err := os.ReadFile(targets["/etc/prometheus/prometheus.yml"])
	if err != nil {
		t.Fatalf("prometheus.yml: %v", err)
	}
	var cfg struct {
		RuleFiles     []string `yaml:"rule_files"`
		ScrapeConfigs []struct {
			MetricsPath   string `yaml:"metrics_path"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		t.Fatalf("prometheus.yml: %v", err)
	}
	if len(cfg.RuleFiles) == 0 {
		t.Error("prometheus.yml loads no rule files")
	}
	for _, rf := range cfg.RuleFiles {
		src, ok := targets[rf]
		if !ok {
			t.Errorf("prometheus.yml: rule file %s is not mounted", rf)
			continue
		}
		requireFile(t, root, src, "prometheus rule file")
	}
	scraped := map[string]bool{}
	for _, sc := range cfg.ScrapeConfigs {
		for _, st := range sc.StaticConfigs {
			for _, target := range st.Targets {
				host, port, _ := strings.Cut(target, ":")
				g, ok := c.gateways[host]
				if !ok || g.cfg == nil {
					continue
				}
				scraped[host] = true
				if port != g.ops || (sc.MetricsPath != "" && sc.MetricsPath != "/metrics") {
					t.Errorf("prometheus.yml: scrapes %s%s, want %s:%s/metrics", target, sc.MetricsPath, host, g.ops)
				}
			}
		}
	}
	for _, g := range serves {
		if !scraped[g.name] {
			t.Errorf("prometheus.yml: replica %s is not scraped", g.name)
		}
	}
}

// checkComposeGrafana: the provisioned data source is the Prometheus service
// and the dashboard provider reads a mounted directory.
func checkComposeGrafana(t *testing.T, root string, c *composeStack) {
	t.Helper()
	gf, ok := c.file.Services["grafana"]
	if !ok {
		t.Fatal("compose: no grafana service")
	}
	targets := c.volumeTargets(gf)
	var ds struct {
		Datasources []struct {
			URL string `yaml:"url"`
		} `yaml:"datasources"`
	}
	var providers struct {
		Providers []struct {
			Options struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	for target, out := range map[string]any{
		"/etc/grafana/provisioning/datasources/gateway.yaml": &ds,
		"/etc/grafana/provisioning/dashboards/gateway.yaml":  &providers,
	} {
		data, err := os.ReadFile(targets[target])
		if err != nil {
			t.Fatalf("grafana provisioning %s: %v", target, err)
		}
		if err := yaml.Unmarshal(data, out); err != nil {
			t.Fatalf("grafana provisioning %s: %v", target, err)
		}
	}
	if len(ds.Datasources) != 1 || ds.Datasources[0].URL != "http://prometheus:9090" {
		t.Errorf("grafana data sources %+v, want one at http://prometheus:9090", ds.Datasources)
	}
	for _, p := range providers.Providers {
		src, ok := targets[p.Options.Path]
		if !ok {
			t.Errorf("grafana dashboards path %s is not mounted", p.Options.Path)
			continue
		}
		requireFile(t, root, filepath.Join(src, "gateway.json"), "grafana dashboard")
	}
}

// checkComposeRedis: append-only persistence, and the replicas' URL names it.
func checkComposeRedis(t *testing.T, c *composeStack, serves []*gatewayService) {
	t.Helper()
	r, ok := c.file.Services["redis"]
	if !ok {
		t.Fatal("compose: no redis service")
	}
	if v := flagValue(r.Command, "appendonly", ""); v != "yes" {
		t.Errorf("redis command %q: want --appendonly yes", r.Command)
	}
	for _, g := range serves {
		u, err := url.Parse(g.cfg.RedisURL)
		if err != nil || u.Hostname() != "redis" {
			t.Errorf("%s: redis URL %q does not name the redis service", g.name, g.cfg.RedisURL)
		}
	}
}
