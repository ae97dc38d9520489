package server

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/bedrock-gateway/gateway/internal/cli"
	"github.com/bedrock-gateway/gateway/internal/sim"
	"github.com/bedrock-gateway/gateway/internal/testutil/redistest"
)

// TestExportApplyRoundTrip: `gateway export --include-secrets` from one store,
// then `gateway apply -f --prune` into an empty one, reproduces the state
// exactly, and the restored gateway serves the same credentials.
func TestExportApplyRoundTrip(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, sim.Options{})
	a := startGateway(t, gatewayOptions{redis: redistest.Start(t).URL(), upstream: up, stateYAML: accessState})
	// Changes made through the admin API are part of the state too.
	if code := a.admin(t, "POST", "/admin/v1/credentials", map[string]any{"account": "333333333333", "kind": "api_key", "label": "nb"}, nil); code != 201 {
		t.Fatalf("issue: %d", code)
	}
	if code := a.admin(t, "POST", "/admin/v1/entitlements/unshared/shares", "target,monthly_tokens\n444444444444,5000\n", nil); code != 200 {
		t.Fatalf("share via CSV: %d", code)
	}
	b := startGateway(t, gatewayOptions{redis: redistest.Start(t).URL(), upstream: up})

	run := func(g *gateway, args ...string) string {
		t.Helper()
		var out, errOut bytes.Buffer
		env := cli.Env{Stdout: &out, Stderr: &errOut, Getenv: func(k string) string {
			switch k {
			case "GATEWAY_ADMIN_TOKEN":
				return adminToken
			case "GATEWAY_ADMIN_URL":
				return "http://" + g.OpsAddr()
			}
			return ""
		}}
		if err := cli.Run(context.Background(), args, env); err != nil {
			t.Fatalf("gateway %v: %v\n%s", args, err, errOut.String())
		}
		return out.String()
	}
	file := filepath.Join(t.TempDir(), "state.yaml")
	run(a, "export", "--include-secrets", "--file", file)
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("export file: %v %v", fi, err)
	}
	plan := run(b, "apply", "-f", file, "--prune", "--dry-run")
	if plan == "" {
		t.Fatal("dry run showed no changes against an empty store")
	}
	run(b, "apply", "-f", file, "--prune")
	again := run(b, "apply", "-f", file, "--prune")
	want, _ := os.ReadFile(file)
	got := run(b, "export", "--include-secrets")
	if got != string(want) {
		t.Fatalf("restored state differs:\n--- exported\n%s\n--- restored\n%s", want, got)
	}
	t.Logf("second apply: %s", again)
	// The restored gateway authenticates the same keys.
	if _, err := converse(context.Background(), b.client(t, devAKID, devSecret), "direct", 4); err != nil {
		t.Fatalf("call through the restored gateway: %v", err)
	}
}
