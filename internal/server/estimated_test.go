package server

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	brtypes "github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"

	"github.com/bedrock-gateway/gateway/internal/sim"
	"github.com/bedrock-gateway/gateway/internal/testutil/redistest"
	"github.com/bedrock-gateway/gateway/internal/testutil/sdktest"
	"github.com/bedrock-gateway/gateway/internal/testutil/wait"
)

// TestUnknownUsageChargedAsSeen: when a stream ends without its usage (the
// upstream broke it, or the client left for longer than the drain timeout),
// the cap, the ledger and the metrics all record the same figures: the input
// estimate plus the output seen, marked estimated, not the whole reservation
// in the cap and zero in the ledger.
func TestUnknownUsageChargedAsSeen(t *testing.T) {
	t.Parallel()
	const limit = 1_000_000
	for _, tc := range []struct {
		name    string
		headers []string
		args    []string
		leave   bool // the client goes away after the first event
		failed  bool // the upstream failed: an error in the ledger too
	}{
		{name: "upstream resets mid-stream", headers: []string{"X-Sim-Fault", "reset"}, failed: true},
		{name: "client gone past the drain timeout", headers: []string{"X-Sim-Event-Delay", "300ms"},
			args: []string{"--drain-timeout", "100ms"}, leave: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rs := redistest.Start(t)
			up := newUpstream(t, sim.Options{})
			g := startGateway(t, gatewayOptions{redis: rs.URL(), upstream: up, stateYAML: capState(limit, "strict"), args: tc.args})
			c := g.client(t, devAKID, devSecret, sdktest.WithHeaders(tc.headers...))
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			out, err := c.ConverseStream(ctx, &bedrockruntime.ConverseStreamInput{ModelId: aws.String("capped"),
				Messages: userMessage("a long answer please"), InferenceConfig: &brtypes.InferenceConfiguration{MaxTokens: aws.Int32(4096)}})
			if err != nil {
				t.Fatal(err)
			}
			events := out.GetStream().Events()
			<-events
			if tc.leave {
				cancel()
				out.GetStream().Close()
			} else {
				for range events {
				}
				var unavailable *brtypes.ServiceUnavailableException
				if err := out.GetStream().Err(); !errors.As(err, &unavailable) {
					t.Fatalf("broken stream: client saw %v, want a serviceUnavailableException", err)
				}
			}
			wait.For(t, "the call to finish", 20*time.Second, func() bool { return g.Inflight() == 0 })

			used := capUsed(t, g, "capped", limit)
			rows, err := g.Limiter().Ledger(context.Background(), time.Now().UTC().Format("2006-01"), []string{"capped"})
			if err != nil || len(rows) != 1 {
				t.Fatalf("ledger %+v %v", rows, err)
			}
			r := rows[0]
			charged := r.InputTokens + r.OutputTokens
			switch {
			case used.Used != charged:
				t.Errorf("the cap was charged %d, the ledger says %d: they must agree", used.Used, charged)
			case r.InputTokens == 0 || charged >= 4096:
				t.Errorf("ledger %+v: want the input estimate plus the output seen, not 0 nor the whole %d-token reservation", r, 4096)
			case r.Requests != 1 || r.Estimated != 1:
				t.Errorf("ledger %+v: want one request marked estimated", r)
			case tc.failed != (r.Errors == 1):
				t.Errorf("ledger %+v: errors, want failed=%v", r, tc.failed)
			}
			var prom int64
			fams, err := g.Metrics().Registry.Gather()
			if err != nil {
				t.Fatal(err)
			}
			var estimated float64
			for _, f := range fams {
				switch f.GetName() {
				case "gateway_tokens_total":
					for _, m := range f.GetMetric() {
						if label(m, "type") == "input" || label(m, "type") == "output" {
							prom += int64(m.GetCounter().GetValue())
						}
					}
				case "gateway_usage_estimated_total":
					estimated = f.GetMetric()[0].GetCounter().GetValue()
				}
			}
			if prom != charged || estimated != 1 {
				t.Errorf("metrics: %d tokens, %v estimated requests; want %d and 1", prom, estimated, charged)
			}
		})
	}
}
