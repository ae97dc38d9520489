package config

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
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
