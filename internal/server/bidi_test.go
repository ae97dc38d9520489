package server

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"

	"github.com/bedrock-gateway/gateway/internal/sim"
	"github.com/bedrock-gateway/gateway/internal/testutil/bidisdk"
	"github.com/bedrock-gateway/gateway/internal/testutil/redistest"
	"github.com/bedrock-gateway/gateway/internal/testutil/wait"
)

// TestBidirectionalStreamThroughServer: the official SDK over h2c, through the
// whole server (quota, ledger) to the simulator, which verifies the hub's chain.
func TestBidirectionalStreamThroughServer(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	up := newUpstream(t, sim.Options{})
	g := startGateway(t, gatewayOptions{redis: rs.URL(), upstream: up, stateYAML: capState(1_000_000, "typical")})
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Protocols: &p}
	t.Cleanup(tr.CloseIdleConnections)
	c := g.client(t, devAKID, devSecret, func(o *bedrockruntime.Options) { o.HTTPClient = &http.Client{Transport: tr} })
	ctx := context.Background()
	out, err := c.InvokeModelWithBidirectionalStream(ctx, &bedrockruntime.InvokeModelWithBidirectionalStreamInput{ModelId: aws.String("capped")})
	if err != nil {
		t.Fatal(err)
	}
	s := out.GetStream()
	defer s.Close()
	for _, text := range []string{"hello there", "both ways"} {
		if err := bidisdk.Send(ctx, s, bidisdk.TextInput(text)); err != nil {
			t.Fatal(err)
		}
		if bidisdk.TextOutput(bidisdk.Next(t, s)) != text {
			t.Fatal("stream ended early")
		}
	}
	if err := s.Writer.Close(); err != nil {
		t.Fatal(err)
	}
	for bidisdk.Next(t, s) != nil {
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	wait.For(t, "the session to settle", 10*time.Second, func() bool { return g.Inflight() == 0 })
	got, n := ledgerTotal(t, g, "capped")
	if want := up.sim.Totals(); got != want || n != 1 || want.InputTokens != 4 {
		t.Fatalf("ledger %+v over %d requests, simulator %+v", got, n, want)
	}
}
