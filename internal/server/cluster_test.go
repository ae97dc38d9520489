package server

import (
	"context"
	"strings"
	"testing"

	"github.com/bedrock-gateway/gateway/internal/sim"
	"github.com/bedrock-gateway/gateway/internal/testutil/redistest"
)

// TestRedisCluster runs the whole gateway on a three-master Redis Cluster
// (--redis-mode cluster, seeds as comma-separated URLs): state, revocation,
// quota and the ledger all work across slots.
func TestRedisCluster(t *testing.T) {
	t.Parallel()
	cl := redistest.StartCluster(t, 3)
	seeds := make([]string, 0, len(cl.Addrs()))
	for _, a := range cl.Addrs() {
		seeds = append(seeds, "redis://"+a)
	}
	up := newUpstream(t, sim.Options{})
	g := startGateway(t, gatewayOptions{redis: strings.Join(seeds, ","), upstream: up, stateYAML: capState(1_000_000, "strict"),
		args: []string{"--redis-mode", "cluster"}})
	c := g.client(t, devAKID, devSecret)
	for i := 0; i < 5; i++ {
		if _, err := converse(context.Background(), c, "capped", 8); err != nil {
			t.Fatal(err)
		}
	}
	if st := capUsed(t, g, "capped", 1_000_000); st.Used != up.sim.Totals().Total() || st.Reserved != 0 {
		t.Fatalf("cap on the cluster: %+v, simulator %d", st, up.sim.Totals().Total())
	}
	if u, n := ledgerTotal(t, g, "capped"); u != up.sim.Totals() || n != 5 {
		t.Fatalf("ledger on the cluster: %+v over %d", u, n)
	}
	if code := g.admin(t, "DELETE", "/admin/v1/entitlements/capped/shares/ou-ab12-platform", nil, nil); code != 200 {
		t.Fatalf("revoke: %d", code)
	}
	if _, err := converse(context.Background(), c, "capped", 8); errCode(err) != "AccessDeniedException" {
		t.Fatalf("after revoke: %v", err)
	}
}
