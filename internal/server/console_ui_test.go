package server

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/bedrock-gateway/gateway/internal/sim"
	"github.com/bedrock-gateway/gateway/internal/testutil/redistest"
)

// TestConsoleMounted: the console is served on the ops listener when an
// admin token is configured, unless --console=false; without a token there
// is nothing to sign in with, so it is off.
func TestConsoleMounted(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	up := newUpstream(t, sim.Options{})
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want int
	}{
		{"default with a token", nil, nil, http.StatusOK},
		{"turned off", []string{"--console=false"}, nil, http.StatusNotFound},
		{"no admin token", nil, map[string]string{"GATEWAY_ADMIN_TOKEN": ""}, http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := startGateway(t, gatewayOptions{redis: rs.URL(), upstream: up, stateYAML: baseState, args: tt.args, env: tt.env})
			resp, err := http.Get("http://" + g.OpsAddr() + "/console/")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Fatalf("GET /console/: %d, want %d", resp.StatusCode, tt.want)
			}
			if tt.want != http.StatusOK {
				return
			}
			if !strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'self'") || !strings.Contains(string(body), "js/app.js") {
				t.Errorf("the console page: CSP %q, body %.200s", resp.Header.Get("Content-Security-Policy"), body)
			}
			resp, err = http.Get("http://" + g.OpsAddr() + "/console/config.json")
			if err != nil {
				t.Fatal(err)
			}
			body, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
			if !strings.Contains(string(body), `"data_endpoint":"`+g.endpoint()+`"`) {
				t.Errorf("config.json %s, want the data endpoint %s", body, g.endpoint())
			}
		})
	}
}
