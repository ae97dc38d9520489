package server

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bedrock-gateway/gateway/internal/sim"
	"github.com/bedrock-gateway/gateway/internal/testutil/redistest"
)

// TestOpsListenerAuth: /debug/pprof is served to admin-role tokens only and never
// serves cmdline; /metrics, with a metrics token, only to that token; the
// probes stay open; tokens of --admin-token-file (hashes only) work.
func TestOpsListenerAuth(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	up := newUpstream(t, sim.Options{})
	const (
		metricsToken = "metrics-token-0123456789"
		viewerToken  = "viewer-token-0123456789"
	)
	sum := sha256.Sum256([]byte(viewerToken))
	tokenFile := filepath.Join(t.TempDir(), "admin-tokens")
	if err := os.WriteFile(tokenFile, []byte("# hashes only\nviewer-1 viewer sha256:"+hex.EncodeToString(sum[:])+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	metricsFile := filepath.Join(t.TempDir(), "metrics-token")
	if err := os.WriteFile(metricsFile, []byte(metricsToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	g := startGateway(t, gatewayOptions{redis: rs.URL(), upstream: up, stateYAML: baseState,
		args: []string{"--pprof", "--admin-token-file", tokenFile, "--metrics-token-file", metricsFile}})
	ops := "http://" + g.OpsAddr()
	cases := []struct {
		path       string
		token      string
		wantStatus int
		wantBody   string
	}{
		{"/debug/pprof/", "", http.StatusUnauthorized, "token is required"},
		{"/debug/pprof/", "wrong-token-0123456789", http.StatusUnauthorized, "token is required"},
		{"/debug/pprof/", metricsToken, http.StatusUnauthorized, "token is required"},
		{"/debug/pprof/", adminToken, http.StatusOK, "heap"},
		{"/debug/pprof/heap?debug=1", viewerToken, http.StatusForbidden, "needs the admin role"},
		{"/debug/pprof/heap?debug=1", adminToken, http.StatusOK, "heap profile"},
		{"/admin/v1/export", viewerToken, http.StatusForbidden, "needs the admin role"},
		{"/debug/pprof/cmdline", "", http.StatusUnauthorized, "token is required"},
		{"/debug/pprof/cmdline", adminToken, http.StatusNotFound, ""},
		{"/metrics", "", http.StatusUnauthorized, "token is required"},
		{"/metrics", adminToken, http.StatusUnauthorized, "token is required"},
		{"/metrics", metricsToken, http.StatusOK, "gateway_"},
		{"/admin/v1/entitlements", viewerToken, http.StatusOK, "entitlements"},
		{"/healthz", "", http.StatusOK, "ok"},
		{"/readyz", "", http.StatusOK, "ready"},
	}
	for _, tc := range cases {
		req, err := http.NewRequest(http.MethodGet, ops+tc.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if tc.token != "" {
			req.Header.Set("Authorization", "Bearer "+tc.token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.wantStatus || !strings.Contains(string(body), tc.wantBody) {
			t.Errorf("GET %s (token %q): %d %.200q, want %d with %q", tc.path, tc.token, resp.StatusCode, body, tc.wantStatus, tc.wantBody)
		}
		if strings.Contains(string(body), "--") && strings.Contains(tc.path, "cmdline") {
			t.Errorf("GET %s served a command line: %q", tc.path, body)
		}
	}
}

// TestMetricsOpenWithoutToken: with no metrics token /metrics stays open (a
// scraper inside the network needs no credentials), and without --pprof
// there is no /debug/pprof.
func TestMetricsOpenWithoutToken(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	up := newUpstream(t, sim.Options{})
	g := startGateway(t, gatewayOptions{redis: rs.URL(), upstream: up})
	for path, want := range map[string]int{"/metrics": http.StatusOK, "/debug/pprof/": http.StatusNotFound} {
		resp, err := http.Get("http://" + g.OpsAddr() + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s: %d, want %d", path, resp.StatusCode, want)
		}
	}
}
