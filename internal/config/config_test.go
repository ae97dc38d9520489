package config

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bedrock-gateway/gateway/internal/opsauth"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestDefaults(t *testing.T) {
	t.Parallel()
	c, err := Load(nil, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != ":8080" || c.OpsListen != ":9090" || c.MaxBodyBytes != 25_000_000 || c.LogFormat != "json" || c.RedisTimeout != 500*time.Millisecond {
		t.Fatalf("bad defaults: %+v", c)
	}
}

func TestPrecedenceFlagOverEnvOverFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "gw.yaml")
	if err := os.WriteFile(path, []byte("listen: \":1111\"\nops_listen: \":2222\"\nregion: eu-west-1\nadmin_token: [a=aaaaaaaaaaaaaaaaaaaa, b=bbbbbbbbbbbbbbbbbbbb]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load([]string{"--config", path, "--listen", ":3333"}, env(map[string]string{"GATEWAY_OPS_LISTEN": ":4444"}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != ":3333" || c.OpsListen != ":4444" || c.Region != "eu-west-1" || len(c.AdminTokens) != 2 {
		t.Fatalf("precedence wrong: %+v", c)
	}
}

func TestValidationReportsEveryProblem(t *testing.T) {
	t.Parallel()
	_, err := Load([]string{"--log-format", "xml", "--redis-mode", "mesh", "--max-body-bytes", "0", "--time-zone", "Mars/Olympus", "--tls-cert", "x"}, env(nil), io.Discard)
	if err == nil {
		t.Fatal("want errors")
	}
	for _, want := range []string{"log-format", "redis-mode", "max-body-bytes", "time-zone", "tls-key"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %s:\n%v", want, err)
		}
	}
}

func TestUnknownConfigKey(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "gw.yaml")
	_ = os.WriteFile(path, []byte("listne: \":1\"\n"), 0o600)
	if _, err := Load([]string{"--config", path}, env(nil), io.Discard); err == nil || !strings.Contains(err.Error(), "listne") {
		t.Fatalf("want unknown key error, got %v", err)
	}
}

func TestReferenceListsEverySetting(t *testing.T) {
	t.Parallel()
	ref := Reference()
	var c Serve
	for _, s := range c.Settings() {
		if !strings.Contains(ref, "`--"+s.Name+"`") || !strings.Contains(ref, s.Env()) {
			t.Errorf("reference misses %s", s.Name)
		}
	}
}

// secretValue is a value each secret setting accepts (a Redis URL with a
// password, for --redis-url).
func secretValue(s Setting) string {
	if s.Name == "redis-url" {
		return "redis://gateway:pa55word-0123456789@redis:6379/0"
	}
	return "secret-value-0123456789"
}

func TestSecretFlagRefused(t *testing.T) {
	t.Parallel()
	var c Serve
	n := 0
	for _, s := range c.Settings() {
		if !s.Secret {
			continue
		}
		n++
		v := secretValue(s)
		for _, args := range [][]string{{"--" + s.Name, v}, {"-" + s.Name + "=" + v}} {
			t.Run(strings.Join(args, " "), func(t *testing.T) {
				t.Parallel()
				_, err := Load(args, env(nil), io.Discard)
				if err == nil {
					t.Fatal("a secret given as a flag was accepted")
				}
				for _, want := range []string{"--" + s.Name + ":", "not accepted as a flag", s.Env(), "--" + s.Name + "-file"} {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error %q does not say %q", err, want)
					}
				}
				if strings.Contains(err.Error(), "0123456789") {
					t.Errorf("error echoes the secret: %v", err)
				}
			})
		}
	}
	if n < 4 {
		t.Fatalf("%d secret settings, want at least redis-url, admin-token, alert-webhook-secret, metrics-token", n)
	}
}

func TestRedisURLFlag(t *testing.T) {
	t.Parallel()
	cases := []struct {
		url     string
		allowed bool
	}{
		{"redis://redis:6379/0", true},
		{"rediss://gateway@redis:6379", true},
		{"redis://a:6379,redis://b:6379", true},
		{"redis://:pa55word-0123456789@redis:6379", false},
		{"redis://gateway:pa55word-0123456789@redis:6379", false},
		{"redis://a:6379, rediss://u:pa55word-0123456789@b:6379", false},
		{"redis://u:pa55%zz-0123456789@b:6379", false}, // unparsable, and may hide a password
	}
	for _, tc := range cases {
		t.Run(tc.url, func(t *testing.T) {
			t.Parallel()
			c, err := Load([]string{"--redis-url", tc.url}, env(nil), io.Discard)
			if tc.allowed {
				if err != nil || c.RedisURL != tc.url {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), "GATEWAY_REDIS_URL") || strings.Contains(err.Error(), "0123456789") {
				t.Fatalf("want a refusal naming GATEWAY_REDIS_URL without the password, got %v", err)
			}
		})
	}
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestSecretFromEnvOrFile: every single-value secret comes from its
// environment variable, the config file or its file flag, and not from two
// of them at once.
func TestSecretFromEnvOrFile(t *testing.T) {
	t.Parallel()
	var c Serve
	for _, s := range c.Settings() {
		if _, isString := s.ptr.(*string); !s.Secret || !isString {
			continue
		}
		v := secretValue(s)
		get := func(c *Serve) string {
			for _, x := range c.Settings() {
				if x.Name == s.Name {
					return *x.ptr.(*string)
				}
			}
			return ""
		}
		t.Run(s.Name, func(t *testing.T) {
			t.Parallel()
			cases := []struct {
				name    string
				args    []string
				env     map[string]string
				yaml    string
				wantErr string
			}{
				{name: "env", env: map[string]string{s.Env(): v}},
				{name: "config file", yaml: s.Key() + ": " + v + "\n"},
				{name: "file with newline", args: []string{"--" + s.Name + "-file", writeFile(t, v+"\n")}},
				{name: "file with CRLF", args: []string{"--" + s.Name + "-file", writeFile(t, v+"\r\n")}},
				{name: "file named in env", env: map[string]string{s.Env() + "_FILE": writeFile(t, v)}},
				{name: "file and env", args: []string{"--" + s.Name + "-file", writeFile(t, v)}, env: map[string]string{s.Env(): v}, wantErr: "both set"},
				{name: "missing file", args: []string{"--" + s.Name + "-file", "/nonexistent/secret"}, wantErr: "--" + s.Name + "-file: open /nonexistent/secret"},
				{name: "empty file", args: []string{"--" + s.Name + "-file", writeFile(t, "\n")}, wantErr: "is empty"},
			}
			for _, tc := range cases {
				args := tc.args
				if tc.yaml != "" {
					args = append(args, "--config", writeFile(t, tc.yaml))
				}
				c, err := Load(args, env(tc.env), io.Discard)
				if tc.wantErr != "" {
					if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
						t.Errorf("%s: want error %q, got %v", tc.name, tc.wantErr, err)
					}
					continue
				}
				if err != nil {
					t.Errorf("%s: %v", tc.name, err)
					continue
				}
				if got := get(c); got != v {
					t.Errorf("%s: got %q, want %q", tc.name, got, v)
				}
			}
		})
	}
}

func TestAdminTokens(t *testing.T) {
	t.Parallel()
	const fileToken = "file-token-0123456789"
	sum := sha256.Sum256([]byte(fileToken))
	goodFile := "# admin tokens\nviewer-1 viewer sha256:" + hex.EncodeToString(sum[:]) + "\n"
	cases := []struct {
		name    string
		args    []string
		env     map[string]string
		want    []opsauth.Principal
		wantErr []string
	}{
		{name: "none"},
		{name: "env, named and bare", env: map[string]string{"GATEWAY_ADMIN_TOKEN": "ci=ci-token-0123456789,bare-token-0123456789"},
			want: []opsauth.Principal{{Name: "ci", Role: opsauth.RoleAdmin}, {Name: "token2", Role: opsauth.RoleAdmin}}},
		{name: "file", args: []string{"--admin-token-file", writeFile(t, goodFile)},
			want: []opsauth.Principal{{Name: "viewer-1", Role: opsauth.RoleViewer}}},
		{name: "env and file add up", args: []string{"--admin-token-file", writeFile(t, goodFile)}, env: map[string]string{"GATEWAY_ADMIN_TOKEN": "ci=ci-token-0123456789"},
			want: []opsauth.Principal{{Name: "ci", Role: opsauth.RoleAdmin}, {Name: "viewer-1", Role: opsauth.RoleViewer}}},
		{name: "file from env", env: map[string]string{"GATEWAY_ADMIN_TOKEN_FILE": writeFile(t, goodFile)},
			want: []opsauth.Principal{{Name: "viewer-1", Role: opsauth.RoleViewer}}},
		{name: "same name in env and file", args: []string{"--admin-token-file", writeFile(t, goodFile)}, env: map[string]string{"GATEWAY_ADMIN_TOKEN": "viewer-1=ci-token-0123456789"},
			wantErr: []string{`"viewer-1" is given twice`}},
		{name: "bad file lines", args: []string{"--admin-token-file", writeFile(t, "ops root sha256:00\n\nci admin "+fileToken+"\n")},
			wantErr: []string{"--admin-token-file", "line 1:", `unknown role "root"`, "line 3:"}},
		{name: "missing file", args: []string{"--admin-token-file", "/nonexistent/tokens"}, wantErr: []string{"--admin-token-file: open /nonexistent/tokens"}},
		{name: "short env token", env: map[string]string{"GATEWAY_ADMIN_TOKEN": "ci=short"}, wantErr: []string{"at least 16 characters"}},
		{name: "pprof without an admin token", args: []string{"--pprof"}, wantErr: []string{"--pprof needs an admin token"}},
		{name: "pprof with a file token", args: []string{"--pprof", "--admin-token-file", writeFile(t, goodFile)},
			want: []opsauth.Principal{{Name: "viewer-1", Role: opsauth.RoleViewer}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := Load(tc.args, env(tc.env), io.Discard)
			if len(tc.wantErr) > 0 {
				if err == nil {
					t.Fatal("want an error")
				}
				for _, w := range tc.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q lacks %q", err, w)
					}
				}
				if strings.Contains(err.Error(), fileToken) {
					t.Errorf("error echoes a token: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			toks := c.AdminAuthTokens()
			if len(toks) != len(tc.want) {
				t.Fatalf("%d tokens, want %d", len(toks), len(tc.want))
			}
			for i, w := range tc.want {
				if toks[i].Name != w.Name || toks[i].Role != w.Role {
					t.Errorf("token %d: %s/%s, want %s/%s", i, toks[i].Name, toks[i].Role, w.Name, w.Role)
				}
			}
			if p, ok := opsauth.NewSet(toks).Authenticate("Bearer " + fileToken); ok != (tc.args != nil || tc.env["GATEWAY_ADMIN_TOKEN_FILE"] != "") || (ok && p.Name != "viewer-1") {
				t.Errorf("the file's token authenticates as %v, %v", p, ok)
			}
		})
	}
}

func TestMetricsTokenLength(t *testing.T) {
	t.Parallel()
	if _, err := Load(nil, env(map[string]string{"GATEWAY_METRICS_TOKEN": "short"}), io.Discard); err == nil || !strings.Contains(err.Error(), "metrics token must be at least 16") {
		t.Fatalf("want a length error, got %v", err)
	}
}

func TestHelpSaysWhereSecretsComeFrom(t *testing.T) {
	t.Parallel()
	var out strings.Builder
	if _, err := Load([]string{"-h"}, env(nil), &out); err == nil {
		t.Fatal("want flag.ErrHelp")
	}
	for _, want := range []string{"not accepted as a flag, use GATEWAY_ADMIN_TOKEN, the --config file or --admin-token-file", "--alert-webhook-secret-file", "GATEWAY_METRICS_TOKEN"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("serve -h does not say %q", want)
		}
	}
}

func TestRequestBodySettings(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		check   func(*Serve) bool
		wantErr string
	}{
		{name: "defaults", check: func(c *Serve) bool {
			return c.BodyReadTimeout == 30*time.Second && c.MaxInflightBody == 512<<20 && !c.BehindTLSProxy
		}},
		{name: "set", args: []string{"--body-read-timeout", "5s", "--max-inflight-body-bytes", "30000000"},
			env: map[string]string{"GATEWAY_BEHIND_TLS_PROXY": "true"}, check: func(c *Serve) bool {
				return c.BodyReadTimeout == 5*time.Second && c.MaxInflightBody == 30_000_000 && c.BehindTLSProxy
			}},
		{name: "zero body timeout", args: []string{"--body-read-timeout", "0s"}, wantErr: "--body-read-timeout must be positive"},
		{name: "budget below the largest body", args: []string{"--max-inflight-body-bytes", "1000"}, wantErr: "--max-inflight-body-bytes must be at least --max-body-bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := Load(tc.args, env(tc.env), io.Discard)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %v, want an error containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(c) {
				t.Fatalf("settings: %+v", c)
			}
		})
	}
}

func TestIAMIdentitySettings(t *testing.T) {
	t.Parallel()
	c, err := Load(nil, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.IAMIdentity || c.GatewayID != "" || c.STSEndpoint != "" || c.IAMIdentityCacheTTL != 5*time.Minute {
		t.Fatalf("bad IAM identity defaults: %+v", c)
	}
	for _, tc := range []struct {
		endpoint string
		ok       bool
	}{
		{"https://vpce-1.sts.us-east-1.vpce.amazonaws.com", true},
		{"http://127.0.0.1:8080", true},
		{"http://127.0.0.1:8080/", true},
		{"https://sts.example.com/path", false},
		{"https://sts.example.com/?q", false},
		{"https://user@sts.example.com", false},
		{"ftp://sts.example.com", false},
		{"sts.example.com", false},
	} {
		_, err := Load([]string{"--iam-identity", "--sts-endpoint", tc.endpoint}, env(nil), io.Discard)
		if (err == nil) != tc.ok {
			t.Errorf("--sts-endpoint %q: err = %v, want ok=%v", tc.endpoint, err, tc.ok)
		}
	}
	if _, err := Load([]string{"--iam-identity-cache-ttl", "0s"}, env(nil), io.Discard); err == nil || !strings.Contains(err.Error(), "iam-identity-cache-ttl") {
		t.Fatalf("zero cache TTL: err = %v", err)
	}
}

// TestTLSSelfSigned: a generated certificate is for the simulator demo only.
func TestTLSSelfSigned(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		args    []string
		wantErr bool
	}{
		{"with simulate", []string{"--simulate", "--tls-self-signed"}, false},
		{"without simulate", []string{"--upstream-endpoint", "http://127.0.0.1:9", "--tls-self-signed"}, true},
		{"with a certificate", []string{"--simulate", "--tls-self-signed", "--tls-cert", "c.pem", "--tls-key", "k.pem"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Load(tt.args, env(nil), io.Discard)
			if got := err != nil && strings.Contains(err.Error(), "--tls-self-signed"); got != tt.wantErr {
				t.Errorf("Load(%q) = %v, want an --tls-self-signed error: %v", tt.args, err, tt.wantErr)
			}
		})
	}
}

func TestCloudWatchSettings(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		check   func(*Serve) bool
		wantErr string
	}{
		{name: "off by default", check: func(c *Serve) bool {
			return c.CloudWatchNamespace == "" && c.CloudWatchInterval == time.Minute && c.CloudWatchEndpoint == "" && !c.CloudWatchAccountDimension
		}},
		{name: "set", args: []string{"--cloudwatch-namespace", "BedrockGateway", "--cloudwatch-interval", "30s", "--cloudwatch-account-dimension"},
			env: map[string]string{"GATEWAY_CLOUDWATCH_ENDPOINT": "https://monitoring.vpce.example"}, check: func(c *Serve) bool {
				return c.CloudWatchNamespace == "BedrockGateway" && c.CloudWatchInterval == 30*time.Second &&
					c.CloudWatchEndpoint == "https://monitoring.vpce.example" && c.CloudWatchAccountDimension
			}},
		{name: "AWS namespace", args: []string{"--cloudwatch-namespace", "AWS/Bedrock"}, wantErr: "--cloudwatch-namespace must be 1 to 255 characters and must not start with AWS/"},
		{name: "interval too short", args: []string{"--cloudwatch-interval", "10ms"}, wantErr: "--cloudwatch-interval must be at least 1s"},
		{name: "endpoint not a URL", args: []string{"--cloudwatch-endpoint", "monitoring.internal"}, wantErr: "--cloudwatch-endpoint must be an http:// or https:// URL"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := Load(tc.args, env(tc.env), io.Discard)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %v, want an error containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(c) {
				t.Fatalf("settings: %+v", c)
			}
		})
	}
}
