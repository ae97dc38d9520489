package store

import (
	"testing"

	"github.com/bedrock-gateway/gateway/internal/testutil/redistest"
)

// TestCluster runs the Redis-semantics tests against a 3-master Redis Cluster:
// transactions, WATCH and the audit stream need every key in one slot, and
// the PUBLISH queued inside MULTI must be routed with them.
func TestCluster(t *testing.T) {
	t.Parallel()
	cl := redistest.StartCluster(t, 3)
	tests := []struct {
		name string
		run  func(t *testing.T, prefix string)
	}{
		{"load empty", func(t *testing.T, p string) { testLoadEmpty(t, cl.Client(t), p) }},
		{"round trip", func(t *testing.T, p string) { testRoundTrip(t, cl.Client(t), p) }},
		{"concurrent writers", func(t *testing.T, p string) { testConcurrentWriters(t, cl.Client(t), cl.Client(t), p) }},
		{"audit", func(t *testing.T, p string) { testAuditEntries(t, cl.Client(t), p) }},
		{"revocations", func(t *testing.T, p string) { testRevocations(t, cl.Client(t), p) }},
		{"watch", func(t *testing.T, p string) { testWatchPropagation(t, cl.Client(t), cl.Client(t), p) }},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// Each subtest its own prefix, so they share the cluster safely.
			tt.run(t, "c"+string(rune('a'+i)))
		})
	}
}
