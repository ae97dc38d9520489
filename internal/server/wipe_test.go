package server

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	brtypes "github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"

	"github.com/bedrock-gateway/gateway/internal/sim"
	"github.com/bedrock-gateway/gateway/internal/testutil/redistest"
	"github.com/bedrock-gateway/gateway/internal/testutil/wait"
)

// TestRedisRestartsEmpty: Redis restarts without persistence and comes back
// empty. The replica keeps serving its last snapshot (callers are still
// recognized), reports the store wiped (/readyz, gateway_store_wiped), refuses
// fail_closed calls rather than admit them against caps restarted at zero,
// refuses admin changes but an apply, and an apply of the backup restores
// everything.
func TestRedisRestartsEmpty(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	up := newUpstream(t, sim.Options{})
	state := capState(1_000_000, "typical")
	g := startGateway(t, gatewayOptions{redis: rs.URL(), upstream: up, stateYAML: state})
	c := g.client(t, devAKID, devSecret)
	ctx := context.Background()
	if _, err := converse(ctx, c, "capped", 16); err != nil {
		t.Fatal(err)
	}

	rs.Restart() // no AOF, no RDB: an empty Redis
	wait.For(t, "the replica to report the wipe", 30*time.Second, func() bool {
		m := gatheredGauge(t, g, "gateway_store_wiped")
		return m != nil && m.GetGauge().GetValue() == 1
	})
	if body := get(t, "http://"+g.OpsAddr()+"/readyz"); !strings.Contains(body, "lost its data") {
		t.Errorf("/readyz while wiped: %q", body)
	}
	// Still recognized (the snapshot stays), but a fail_closed entitlement is
	// not admitted against counters that restarted at zero.
	_, err := converse(ctx, c, "capped", 16)
	var unavailable *brtypes.ServiceUnavailableException
	if !errors.As(err, &unavailable) {
		t.Fatalf("call on a wiped store: %v, want ServiceUnavailableException (not UnrecognizedClientException)", err)
	}
	// Admin changes other than an apply are refused with the way out.
	if code := g.admin(t, "DELETE", "/admin/v1/entitlements/capped/shares/ou-ab12-platform", nil, nil); code != http.StatusConflict {
		t.Errorf("removing a share on a wiped store: %d, want 409", code)
	}

	// The operator restores the backup.
	req, _ := http.NewRequest("POST", "http://"+g.OpsAddr()+"/admin/v1/apply", strings.NewReader(state))
	req.Header.Set("Authorization", "Bearer "+adminToken)
	req.Header.Set("Content-Type", "application/yaml")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("apply to a wiped store: %d %s", resp.StatusCode, body)
	}
	wait.For(t, "the store to be restored", 30*time.Second, func() bool {
		m := gatheredGauge(t, g, "gateway_store_wiped")
		return m != nil && m.GetGauge().GetValue() == 0
	})
	out, err := c.Converse(ctx, &bedrockruntime.ConverseInput{ModelId: aws.String("capped"), Messages: userMessage("back")})
	if err != nil || out.Usage == nil {
		t.Fatalf("call after the restore: %v", err)
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
