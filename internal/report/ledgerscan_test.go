package report

import (
	"context"
	"slices"
	"testing"

	"github.com/bedrock-gateway/gateway/internal/testutil/redistest"
)

// TestLedgerScannerCluster finds ledger keys spread over every master of a
// cluster, and ignores other months, other prefixes and other key kinds.
func TestLedgerScannerCluster(t *testing.T) {
	t.Parallel()
	cl := redistest.StartCluster(t, 3)
	client := cl.Client(t)
	ctx := context.Background()
	keys := map[string]bool{
		"gw:{ent:a}:ledger:2026-10":       true,
		"gw:{ent:b-2}:ledger:2026-10":     true,
		"gw:{ent:zeta}:ledger:2026-10":    true,
		"gw:{ent:other}:ledger:2026-09":   false,
		"gw:{ent:capped}:cap:2026-10:x:y": false,
		"other:{ent:a2}:ledger:2026-10":   false,
	}
	for i := range 30 { // enough entitlements to land on every master
		keys["gw:{ent:e"+string(rune('a'+i%26))+string(rune('a'+i/26))+"}:ledger:2026-10"] = true
	}
	var want []string
	for k, in := range keys {
		if err := client.HSet(ctx, k, "x|m|requests", 1).Err(); err != nil {
			t.Fatal(err)
		}
		if in {
			want = append(want, k[len("gw:{ent:"):len(k)-len("}:ledger:2026-10")])
		}
	}
	slices.Sort(want)
	got, err := (&LedgerScanner{Client: client}).Entitlements(ctx, "2026-10")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Errorf("got %v\nwant %v", got, want)
	}
}
