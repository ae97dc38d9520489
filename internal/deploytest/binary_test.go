package deploytest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/bedrock-gateway/gateway/internal/app"
	"github.com/bedrock-gateway/gateway/internal/config"
)

// probePaths are the ops listener's GET endpoints a probe or scraper may use.
var probePaths = []string{"/healthz", "/readyz", "/metrics"}

// schema is what the binary accepts: each subcommand's flags (with defaults)
// and every environment variable any command reads.
type schema struct {
	flags map[string]map[string]string // subcommand -> flag name -> default ("" if none)
	env   map[string]bool
}

var loadSchema = sync.OnceValues(func() (*schema, error) {
	s := &schema{flags: map[string]map[string]string{}, env: map[string]bool{"GATEWAY_CONFIG": true}}
	for _, st := range (&config.Serve{}).Settings() {
		s.env[st.Env()] = true
	}
	for _, cmd := range []string{"serve", "sim", "apply", "export"} {
		help, ok, err := helpOf(cmd)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue // not (yet) a command of this binary
		}
		s.flags[cmd] = parseFlags(help)
		for _, v := range envRe.FindAllString(help, -1) {
			s.env[v] = true
		}
	}
	if len(s.flags["serve"]) != len((&config.Serve{}).Settings())+1 {
		return nil, fmt.Errorf("serve -h lists %d flags, want the %d settings and --config", len(s.flags["serve"]), len((&config.Serve{}).Settings()))
	}
	return s, nil
})

func binarySchema(t *testing.T) *schema {
	t.Helper()
	s, err := loadSchema()
	if err != nil {
		t.Fatalf("reading the binary's command line: %v", err)
	}
	return s
}

// helpOf runs `gateway CMD -h` in process and returns what it printed; ok is
// false when CMD is not a command.
func helpOf(cmd string) (string, bool, error) {
	var out bytes.Buffer
	env := app.Env{Stdout: &out, Stderr: &out, Getenv: func(string) string { return "" },
		LookupEnv: func(string) (string, bool) { return "", false }}
	_ = app.Main(context.Background(), []string{cmd, "-h"}, env) // -h exits 2 for some commands
	help := out.String()
	if strings.Contains(help, "unknown command") {
		return "", false, nil
	}
	if !flagLineRe.MatchString(help) {
		return "", false, fmt.Errorf("gateway %s -h printed no flags:\n%s", cmd, help)
	}
	return help, true, nil
}

var (
	envRe      = regexp.MustCompile(`GATEWAY_[A-Z0-9_]+`)
	flagLineRe = regexp.MustCompile(`(?m)^  -([A-Za-z0-9][A-Za-z0-9-]*)(?:[ \t].*)?$`)
	defaultRe  = regexp.MustCompile(`\(default "?([^")]*)"?\)`)
)

// parseFlags reads flag.PrintDefaults output: "  -name type" lines, each
// followed by its indented usage, which may end in (default X).
func parseFlags(help string) map[string]string {
	flags := map[string]string{}
	lines := strings.Split(help, "\n")
	for i, line := range lines {
		m := flagLineRe.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		block := line
		for j := i + 1; j < len(lines) && strings.HasPrefix(lines[j], "    "); j++ {
			block += " " + lines[j]
		}
		def := ""
		if d := defaultRe.FindStringSubmatch(block); d != nil {
			def = d[1]
		}
		flags[m[1]] = def
	}
	return flags
}

// checkCommand checks a gateway command line (subcommand first, no binary
// name): the subcommand exists and every flag it is given is one of its flags.
func (s *schema) checkCommand(t *testing.T, where string, args []string) {
	t.Helper()
	if len(args) == 0 {
		t.Errorf("%s: no gateway subcommand", where)
		return
	}
	flags, ok := s.flags[args[0]]
	if !ok {
		t.Errorf("%s: gateway has no subcommand %q (known: %v)", where, args[0], keys(s.flags))
		return
	}
	for _, a := range args[1:] {
		if a == "--" {
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if _, ok := flags[name]; !ok {
			t.Errorf("%s: gateway %s has no flag --%s", where, args[0], name)
		}
	}
}

// flagValue returns the value of --name in args (--name V or --name=V), else def.
func flagValue(args []string, name, def string) string {
	for i, a := range args {
		n, v, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || n != name {
			continue
		}
		if hasValue {
			return v
		}
		if i+1 < len(args) {
			return args[i+1]
		}
	}
	return def
}

// loadServe loads a `gateway serve` configuration the way the binary does.
func loadServe(args []string, env map[string]string) (*config.Serve, error) {
	var out bytes.Buffer
	cfg, err := config.Load(args, func(k string) string { return env[k] }, &out)
	if err != nil {
		return nil, fmt.Errorf("%w\n%s", err, out.String())
	}
	return cfg, nil
}

// portOf returns the port of a listen address such as ":8080".
func portOf(t *testing.T, addr string) string {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("listen address %q: %v", addr, err)
	}
	return p
}

func defaultOf(t *testing.T, name string) string {
	t.Helper()
	for _, s := range (&config.Serve{}).Settings() {
		if s.Name == name {
			return s.Default
		}
	}
	t.Fatalf("no setting %q", name)
	return ""
}

// repoRoot is the module root, found from the test's directory.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test directory")
		}
		dir = parent
	}
}

// otherOwnedDirs are deploy/ directories that other parts of the project
// provide (dashboards, alert rules); files the stack mounts from them are only
// required once the directory exists.
var otherOwnedDirs = []string{"deploy/grafana", "deploy/prometheus"}

// requireFile fails unless path (absolute, inside the repository) exists.
func requireFile(t *testing.T, root, path, where string) {
	t.Helper()
	if _, err := os.Stat(path); err == nil {
		return
	}
	rel, err := filepath.Rel(root, path)
	if err != nil || strings.HasPrefix(rel, "..") {
		t.Errorf("%s: %s is outside the repository", where, path)
		return
	}
	rel = filepath.ToSlash(rel)
	for _, d := range otherOwnedDirs {
		if strings.HasPrefix(rel, d+"/") {
			if _, err := os.Stat(filepath.Join(root, d)); os.IsNotExist(err) {
				t.Logf("%s: %s is not there yet (%s does not exist)", where, rel, d)
				return
			}
		}
	}
	t.Errorf("%s: %s does not exist", where, rel)
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func TestBinarySchema(t *testing.T) {
	t.Parallel()
	s := binarySchema(t)
	for _, want := range []struct{ cmd, flag string }{
		{"serve", "config"}, {"serve", "listen"}, {"serve", "ops-listen"},
		{"sim", "listen"}, {"sim", "hub-access-key-id"},
		{"apply", "f"}, {"apply", "dry-run"}, {"apply", "prune"}, {"apply", "admin-url"},
	} {
		if _, ok := s.flags[want.cmd][want.flag]; !ok {
			t.Errorf("gateway %s -h does not list --%s", want.cmd, want.flag)
		}
	}
	for _, env := range []string{"GATEWAY_CONFIG", "GATEWAY_LISTEN", "GATEWAY_ADMIN_TOKEN", "GATEWAY_ADMIN_URL",
		"GATEWAY_SIM_ACCESS_KEY_ID", "GATEWAY_SIM_SECRET_ACCESS_KEY"} {
		if !s.env[env] {
			t.Errorf("%s is not among the environment variables the binary documents", env)
		}
	}
	if got := s.flags["sim"]["listen"]; got != ":8081" {
		t.Errorf("sim --listen default = %q, want :8081", got)
	}
}
