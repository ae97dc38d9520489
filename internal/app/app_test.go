package app

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bedrock-gateway/gateway/internal/cli"
	"github.com/bedrock-gateway/gateway/internal/config"
)

func env(out, errOut *bytes.Buffer) Env {
	return Env{Stdout: out, Stderr: errOut, Getenv: func(string) string { return "" }, LookupEnv: func(string) (string, bool) { return "", false }}
}

// TestReadmeConfigReference keeps the README's configuration table equal to
// the code's (run `go run ./cmd/gateway config reference` to regenerate it).
func TestReadmeConfigReference(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	const begin, end = "<!-- BEGIN CONFIG REFERENCE -->\n", "<!-- END CONFIG REFERENCE -->"
	i, j := strings.Index(s, begin), strings.Index(s, end)
	if i < 0 || j < i {
		t.Fatal("README has no configuration reference markers")
	}
	if got := s[i+len(begin) : j]; got != config.Reference() {
		t.Fatalf("README's configuration reference is stale; replace it with the output of `gateway config reference`")
	}
}

func TestCommands(t *testing.T) {
	t.Parallel()
	cases := []struct {
		args     []string
		wantErr  bool
		exitCode int
		out      string
		errText  string // in the error, when set
	}{
		{args: []string{"version"}, out: "gateway "},
		{args: []string{"help"}, out: "Usage: gateway"},
		{args: []string{"serve", "-h"}},
		{args: []string{"sim", "-h"}},
		{args: []string{"sim", "--organization", "no-such-file.yaml"}, wantErr: true, exitCode: 1, errText: "no-such-file.yaml: no such file"},
		{args: []string{"sim", "--organization", "../../deploy/examples/model-max-output.yaml"}, wantErr: true, exitCode: 1, errText: `unknown field "amazon.nova-sonic-v1:0"`},
		{args: []string{"config", "reference"}, out: "--redis-url"},
		{args: []string{"config", "validate", "--log-format", "xml", "--redis-mode", "mesh"}, wantErr: true, exitCode: 1},
		{args: []string{"config", "validate", "--bootstrap", "../../deploy/examples/state.yaml"}, out: "configuration is valid"},
		{args: []string{"config", "validate", "--model-max-output-file", "../../deploy/examples/model-max-output.yaml"}, out: "configuration is valid"},
		{args: []string{"config", "validate", "--model-max-output-file", "../../deploy/examples/state.yaml"}, wantErr: true, exitCode: 1},
		{args: []string{"config", "validate", "--model-max-output-file", "no-such-file.yaml"}, wantErr: true, exitCode: 1},
		{args: []string{"nope"}, wantErr: true, exitCode: 2},
		{args: nil, wantErr: true, exitCode: 2},
	}
	for _, tc := range cases {
		var out, errOut bytes.Buffer
		err := Main(context.Background(), tc.args, env(&out, &errOut))
		if (err != nil) != tc.wantErr {
			t.Errorf("%v: err %v", tc.args, err)
			continue
		}
		if err != nil && ExitCode(err) != tc.exitCode {
			t.Errorf("%v: exit code %d, want %d", tc.args, ExitCode(err), tc.exitCode)
		}
		if tc.errText != "" && (err == nil || !strings.Contains(err.Error(), tc.errText)) {
			t.Errorf("%v: error %v lacks %q", tc.args, err, tc.errText)
		}
		if tc.out != "" && !strings.Contains(out.String(), tc.out) {
			t.Errorf("%v: output %q lacks %q", tc.args, out.String(), tc.out)
		}
	}
}

func TestConfigValidateReportsEveryProblem(t *testing.T) {
	t.Parallel()
	bad := filepath.Join(t.TempDir(), "max-output.yaml")
	if err := os.WriteFile(bad, []byte("amazon.nova-lite-v1:0: 0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	err := Main(context.Background(), []string{"config", "validate", "--log-format", "xml", "--redis-mode", "mesh", "--max-body-bytes", "0",
		"--model-max-output-file", bad}, env(&out, &errOut))
	for _, want := range []string{"log-format", "redis-mode", "max-body-bytes", "--model-max-output-file", `"amazon.nova-lite-v1:0": the maximum output must be a positive`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("missing %s in %v", want, err)
		}
	}
}

// TestConfigValidateSecrets: `gateway config validate` refuses a secret given
// as a flag, saying where it must come from, and reads the secret files.
func TestConfigValidateSecrets(t *testing.T) {
	t.Parallel()
	cases := []struct {
		args []string
		want []string
	}{
		{[]string{"--admin-token", "ops=dev-admin-token-change-me"}, []string{"--admin-token:", "GATEWAY_ADMIN_TOKEN", "--admin-token-file"}},
		{[]string{"--alert-webhook-secret", "webhook-secret-0123456789"}, []string{"GATEWAY_ALERT_WEBHOOK_SECRET", "--alert-webhook-secret-file"}},
		{[]string{"--redis-url", "redis://gw:pa55word@redis:6379"}, []string{"GATEWAY_REDIS_URL", "--redis-url-file"}},
		{[]string{"--admin-token-file", "/nonexistent/admin-tokens"}, []string{"--admin-token-file: open /nonexistent/admin-tokens"}},
		{[]string{"--metrics-token-file", "/nonexistent/metrics-token"}, []string{"--metrics-token-file: open /nonexistent/metrics-token"}},
	}
	for _, tc := range cases {
		var out, errOut bytes.Buffer
		err := Main(context.Background(), append([]string{"config", "validate"}, tc.args...), env(&out, &errOut))
		if err == nil || ExitCode(err) != 1 {
			t.Errorf("%v: err %v, want exit code 1", tc.args, err)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%v: %q lacks %q", tc.args, err, w)
			}
		}
		if strings.Contains(err.Error(), "change-me") || strings.Contains(err.Error(), "pa55word") || strings.Contains(err.Error(), "0123456789") {
			t.Errorf("%v: the error repeats the secret: %v", tc.args, err)
		}
	}
}

// TestConfigValidateChecksFiles: every file the configuration names is
// loaded as serve would load it; a missing one makes it invalid.
func TestConfigValidateChecksFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	missing := func(name string) string { return filepath.Join(dir, name) }
	var out, errOut bytes.Buffer
	err := Main(context.Background(), []string{"config", "validate",
		"--prices-file", missing("prices.yaml"), "--tls-cert", missing("cert.pem"), "--tls-key", missing("key.pem"),
		"--bootstrap", missing("state.yaml"), "--time-zone", "Mars/Olympus_Mons"}, env(&out, &errOut))
	for _, want := range []string{"--prices-file", "prices.yaml", "--tls-cert/--tls-key", "cert.pem", "state.yaml", "--time-zone"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("config validate does not report %q: %v", want, err)
		}
	}
	out.Reset()
	if err := Main(context.Background(), []string{"config", "validate", "--prices-file", "../../deploy/examples/prices.yaml",
		"--bootstrap", "../../deploy/examples/state.yaml"}, env(&out, &errOut)); err != nil || !strings.Contains(out.String(), "valid") {
		t.Errorf("the shipped example files: %v %s", err, out.String())
	}
}

// TestHelpAndBadFlags: -h prints the command's own usage and succeeds; a bad
// flag or subcommand is one line with a suggestion plus where the usage is,
// and exit code 2.
func TestHelpAndBadFlags(t *testing.T) {
	t.Parallel()
	help := []struct {
		args []string
		want string // the usage's first line
	}{
		{[]string{"config", "-h"}, "Usage: gateway config <subcommand>"},
		{[]string{"config", "--help"}, "Usage: gateway config <subcommand>"},
		{[]string{"config", "validate", "-h"}, "Usage: gateway config validate [serve flags]"},
		{[]string{"config", "validate", "--help"}, "Usage: gateway config validate [serve flags]"},
		{[]string{"config", "reference", "-h"}, "Usage: gateway config reference"},
		{[]string{"serve", "-h"}, "Usage: gateway serve [flags]"},
		{[]string{"entitlements", "update", "-h"}, "Usage: gateway entitlements update NAME [flags]"},
		{[]string{"quota", "--help"}, "Usage: gateway quota [ENTITLEMENT] [flags]"},
	}
	for _, tc := range help {
		var out, errOut bytes.Buffer
		err := Main(context.Background(), tc.args, env(&out, &errOut))
		if first, _, _ := strings.Cut(errOut.String(), "\n"); err != nil || first != tc.want {
			t.Errorf("%v: err %v, first line %q, want %q", tc.args, err, first, tc.want)
		}
	}
	// config validate -h lists serve's flags under its own description.
	var out, errOut bytes.Buffer
	_ = Main(context.Background(), []string{"config", "validate", "-h"}, env(&out, &errOut))
	if s := errOut.String(); strings.Contains(s, "Runs the gateway") || !strings.Contains(s, "-redis-url") {
		t.Errorf("config validate -h:\n%s", s)
	}

	bad := []struct {
		args []string
		want string
	}{
		{[]string{"entitlements", "list", "--ouput", "json"}, "gateway entitlements list: unknown flag --ouput (did you mean --output?)\n" +
			"run 'gateway entitlements list -h' for usage\n"},
		{[]string{"serve", "--redis-ulr", "redis://x"}, "gateway serve: unknown flag --redis-ulr (did you mean --redis-url?)\n" +
			"run 'gateway serve -h' for usage\n"},
		{[]string{"config", "validate", "--log-formt", "json"}, "gateway config validate: unknown flag --log-formt (did you mean --log-format?)\n" +
			"run 'gateway config validate -h' for usage\n"},
		{[]string{"config", "valdate"}, "gateway config: unknown subcommand \"valdate\" (did you mean validate?)\nrun 'gateway config -h' for usage\n"},
		{[]string{"entitlements", "get"}, "gateway entitlements get: exactly one NAME is required\nrun 'gateway entitlements get -h' for usage\n"},
	}
	for _, tc := range bad {
		var out, errOut bytes.Buffer
		err := Main(context.Background(), tc.args, env(&out, &errOut))
		if err == nil || ExitCode(err) != 2 || !errors.Is(err, ErrUsage) {
			t.Errorf("%v: err %v, want exit code 2", tc.args, err)
		}
		if errOut.String() != tc.want || out.Len() != 0 {
			t.Errorf("%v: stderr %q, want %q", tc.args, errOut.String(), tc.want)
		}
	}
}

// TestReconcileExitCodes: `usage reconcile` exits 2 on a bad command line
// (before any network call), 3 on a difference over its tolerance.
func TestReconcileExitCodes(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"--month", "2026-13"}, {"--tolerance", "-1"}, {"--time-zone", "Mars/Base"}, {"extra"}, {"--bogus"}} {
		var out, errOut bytes.Buffer
		err := Main(context.Background(), append([]string{"usage", "reconcile"}, args...), env(&out, &errOut))
		if ExitCode(err) != 2 {
			t.Errorf("%v: exit %d (%v)", args, ExitCode(err), err)
		}
	}
	if got := ExitCode(fmt.Errorf("usage reconcile: 2 ModelIds differ: %w", cli.ErrReconcileDifference)); got != 3 {
		t.Errorf("a difference exits %d, want 3", got)
	}
}
