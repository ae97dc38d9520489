package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/bedrock-gateway/gateway/internal/sim"
	"github.com/bedrock-gateway/gateway/internal/testutil/prereq"
	"github.com/bedrock-gateway/gateway/internal/testutil/redistest"
)

// TestJavaScriptSDK drives the gateway with the official AWS SDK for
// JavaScript v3 (HTTP/2 cleartext by default, :authority and
// x-amz-content-sha256 signed): Converse, ConverseStream, InvokeModel and a
// denial. It needs node and npm (the SDK is installed once into a cache keyed
// by package.json, from the npm registry); without them it skips, except
// under CI=true, where it fails.
func TestJavaScriptSDK(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("installs the JavaScript SDK")
	}
	node := prereq.Program(t, "node", "apt-get install nodejs")
	npm := prereq.Program(t, "npm", "apt-get install npm")
	dir := jsModules(t, npm)

	rs := redistest.Start(t)
	up := newUpstream(t, sim.Options{})
	g := startGateway(t, gatewayOptions{redis: rs.URL(), upstream: up, stateYAML: accessState})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join(dir, "interop.mjs"))
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GATEWAY_ENDPOINT="+g.endpoint(), "MEMBER_AKID="+devAKID, "MEMBER_SECRET="+devSecret, "MODEL=direct")
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("node: %v\n%s%s", err, out.String(), errOut.String())
	}
	var res struct {
		Error        string
		Converse     struct{ InputTokens, OutputTokens int }
		StreamUsage  struct{ InputTokens, OutputTokens int }
		Deltas       int
		Invoke       struct{ Input_tokens, Output_tokens int }
		DeniedName   string
		DeniedStatus int
	}
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("node printed %q: %v", out.String(), err)
	}
	if res.Error != "" {
		t.Fatalf("JavaScript SDK: %s", res.Error)
	}
	if res.Converse.InputTokens != 3 || res.Converse.OutputTokens != 6 || res.StreamUsage.OutputTokens != 5 || res.Deltas != 5 ||
		res.Invoke.Output_tokens != 4 || res.DeniedName != "AccessDeniedException" || res.DeniedStatus != 403 {
		t.Fatalf("unexpected results: %+v", res)
	}
	for _, o := range up.sim.Requests() {
		if o.ModelID != haiku {
			t.Errorf("upstream saw %q", o.ModelID)
		}
	}
}

// jsModules installs the SDK once per package.json version into the user's
// cache and returns a directory holding interop.mjs and node_modules.
func jsModules(t *testing.T, npm string) string {
	t.Helper()
	pkg, err := os.ReadFile("testdata/js/package.json")
	if err != nil {
		t.Fatal(err)
	}
	script, err := os.ReadFile("testdata/js/interop.mjs")
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(pkg)
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "bedrock-gateway-js-"+hex.EncodeToString(sum[:6]))
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@aws-sdk", "client-bedrock-runtime")); err != nil {
		tmp, err := os.MkdirTemp(cache, "bedrock-gateway-js-install-")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(tmp, "package.json"), pkg, 0o644); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		install := exec.CommandContext(ctx, npm, "install", "--no-audit", "--no-fund", "--silent")
		install.Dir = tmp
		if out, err := install.CombinedOutput(); err != nil {
			os.RemoveAll(tmp)
			prereq.Unavailable(t, fmt.Sprintf("npm install failed (no registry access?): %v\n%s", err, out))
		}
		if err := os.Rename(tmp, dir); err != nil && !os.IsExist(err) {
			os.RemoveAll(tmp) // another run won the race; use its copy
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "interop.mjs"), script, 0o644); err != nil {
		t.Fatal(err)
	}
	iam, err := os.ReadFile("testdata/js/iamtoken.mjs")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "iamtoken.mjs"), iam, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}
