package server

import (
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/bedrock-gateway/gateway/internal/sim"
	"github.com/bedrock-gateway/gateway/internal/testutil/redistest"
	"github.com/bedrock-gateway/gateway/internal/testutil/wait"
)

// The gateway reads Redis's persistence settings at start and reports them as
// gateway_store_persistence_enabled: 0 for a Redis that would come back empty
// after a restart, 1 for one with an append-only file.
func TestPersistenceReported(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, sim.Options{})
	for _, tc := range []struct {
		name string
		args []string
		want float64
	}{
		{"none", nil, 0},
		{"aof", []string{"--appendonly", "yes"}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rs := redistest.Start(t, tc.args...)
			g := startGateway(t, gatewayOptions{redis: rs.URL(), upstream: up, stateYAML: baseState})
			var got *dto.Metric
			wait.For(t, "gateway_store_persistence_enabled", 30*time.Second, func() bool {
				got = gatheredGauge(t, g, "gateway_store_persistence_enabled")
				return got != nil
			})
			if v := got.GetGauge().GetValue(); v != tc.want {
				t.Fatalf("gateway_store_persistence_enabled = %v, want %v", v, tc.want)
			}
		})
	}
}

// gatheredGauge returns the single series of a gauge family, or nil when absent.
func gatheredGauge(t *testing.T, g *gateway, name string) *dto.Metric {
	t.Helper()
	fams, err := g.Metrics().Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() == name && len(f.GetMetric()) == 1 {
			return f.GetMetric()[0]
		}
	}
	return nil
}
