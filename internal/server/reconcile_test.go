package server

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bedrock-gateway/gateway/internal/testutil/sdktest"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	brtypes "github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"
	dto "github.com/prometheus/client_model/go"

	"github.com/bedrock-gateway/gateway/internal/bedrock"
	"github.com/bedrock-gateway/gateway/internal/cli"
	"github.com/bedrock-gateway/gateway/internal/report"
	"github.com/bedrock-gateway/gateway/internal/sim"
	"github.com/bedrock-gateway/gateway/internal/testutil/redistest"
	"github.com/bedrock-gateway/gateway/internal/testutil/wait"
)

const reconcileState = baseState + `
entitlements:
  - {name: support, model: "` + haiku + `", limits: {monthly_tokens: 100000000}, shares: [{target: o-testorg0001}]}
  - {name: nova, model: amazon.nova-lite-v1:0, limits: {account_monthly_tokens: 100000000}, shares: [{target: ou-ab12-platform}, {target: ou-ab12-ds000001}]}
  - {name: breaks, model: "` + haiku + `", limits: {monthly_tokens: 100000000}, shares: [{target: o-testorg0001}]}
`

const reconcilePrices = `prices:
  - {model: "` + haiku + `", input: 0.8, output: 4, cache_read: 0.08, cache_write: 1}
  - {model: amazon.nova-lite-v1:0, input: 0.06, output: 0.24}
`

// TestReconciliation drives a mixed workload (all four model operations,
// streaming and not, three accounts and teams, two entitlements, cache tokens,
// client aborts and upstream errors) and checks that the ledger, the Prometheus
// counters and the usage report all equal, token for token, what the
// simulator reported. Streams broken mid-way (entitlement breaks) have no
// reported usage: they are charged as estimated, and counted as errors, in
// the ledger, the metrics and the report alike.
func TestReconciliation(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	up := newUpstream(t, sim.Options{})
	prices := filepath.Join(t.TempDir(), "prices.yaml")
	if err := os.WriteFile(prices, []byte(reconcilePrices), 0o600); err != nil {
		t.Fatal(err)
	}
	g := startGateway(t, gatewayOptions{redis: rs.URL(), upstream: up, stateYAML: reconcileState, args: []string{"--prices-file", prices}})
	ctx := context.Background()
	anthropic := []byte(`{"anthropic_version":"bedrock-2023-05-31","max_tokens":9,"messages":[{"role":"user","content":"count me in please"}]}`)
	nova := []byte(`{"messages":[{"role":"user","content":[{"text":"nova says hi"}]}],"inferenceConfig":{"max_new_tokens":7}}`)

	type caller struct{ akid, secret string }
	callers := []caller{{devAKID, devSecret}, {dsAKID, dsSecret}, {mktAKID, mktSecret}}
	var wg sync.WaitGroup
	for i, cl := range callers {
		for round := 0; round < 3; round++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var opts []func(*bedrockruntime.Options)
				switch round {
				case 1:
					opts = append(opts, sdktest.WithHeaders("X-Sim-Cache-Read-Tokens", fmt.Sprint(10+i)), sdktest.WithHeaders("X-Sim-Cache-Write-Tokens", "3"))
				case 2:
					opts = append(opts, sdktest.WithHeaders("X-Sim-Output-Tokens", "5"))
				}
				c := g.client(t, cl.akid, cl.secret, opts...)
				// Non-streaming.
				_, _ = c.InvokeModel(ctx, &bedrockruntime.InvokeModelInput{ModelId: aws.String("support"), Body: anthropic})
				_, _ = converse(ctx, c, "support", 8)
				if cl.akid != mktAKID { // nova is not shared with marketing: a denial
					_, _ = c.InvokeModel(ctx, &bedrockruntime.InvokeModelInput{ModelId: aws.String("nova"), Body: nova})
				}
				// Streaming, read to the end.
				if out, err := c.ConverseStream(ctx, &bedrockruntime.ConverseStreamInput{ModelId: aws.String("support"), Messages: userMessage("stream it"),
					InferenceConfig: &brtypes.InferenceConfiguration{MaxTokens: aws.Int32(6)}}); err == nil {
					for range out.GetStream().Events() {
					}
				}
				if out, err := c.InvokeModelWithResponseStream(ctx, &bedrockruntime.InvokeModelWithResponseStreamInput{ModelId: aws.String("support"), Body: anthropic}); err == nil {
					for range out.GetStream().Events() {
					}
				}
				// A client that goes away after the first event: the gateway drains for usage.
				actx, cancel := context.WithCancel(ctx)
				slow := g.client(t, cl.akid, cl.secret, sdktest.WithHeaders("X-Sim-Event-Delay", "2ms"))
				if out, err := slow.ConverseStream(actx, &bedrockruntime.ConverseStreamInput{ModelId: aws.String("support"), Messages: userMessage("abort me"),
					InferenceConfig: &brtypes.InferenceConfiguration{MaxTokens: aws.Int32(12)}}); err == nil {
					<-out.GetStream().Events()
					cancel()
					out.GetStream().Close()
				}
				cancel()
				// Upstream errors: refused before a response, and broken mid-stream.
				_, _ = converse(ctx, g.client(t, cl.akid, cl.secret, sdktest.WithHeaders("X-Sim-Fault", "throttle")), "support", 4)
				if out, err := g.client(t, cl.akid, cl.secret, sdktest.WithHeaders("X-Sim-Fault", "midstream")).ConverseStream(ctx,
					&bedrockruntime.ConverseStreamInput{ModelId: aws.String("breaks"), Messages: userMessage("break")}); err == nil {
					for range out.GetStream().Events() {
					}
				}
			}()
		}
	}
	wg.Wait()
	wait.For(t, "aborted streams to be drained", 20*time.Second, func() bool { return g.Inflight() == 0 })
	if err := g.Limiter().Flush(ctx); err != nil {
		t.Fatal(err)
	}
	want := up.sim.Totals()
	if want.CacheReadTokens == 0 || want.InputTokens == 0 {
		t.Fatalf("workload produced no cache tokens or input: %+v", want)
	}

	// 1. The ledger.
	var ledger bedrock.Usage
	for _, name := range []string{"support", "nova"} {
		u, _ := ledgerTotal(t, g, name)
		ledger = ledger.Add(u)
	}
	if ledger != want {
		t.Errorf("ledger %+v, simulator %+v", ledger, want)
	}
	// The broken streams: estimated, marked, and errors too.
	rows, err := g.Limiter().Ledger(ctx, time.Now().UTC().Format("2006-01"), []string{"breaks"})
	if err != nil {
		t.Fatal(err)
	}
	var broken bedrock.Usage
	var brokenReq, brokenEst, brokenErr int64
	for _, r := range rows {
		broken = broken.Add(bedrock.Usage{InputTokens: r.InputTokens, OutputTokens: r.OutputTokens})
		brokenReq, brokenEst, brokenErr = brokenReq+r.Requests, brokenEst+r.Estimated, brokenErr+r.Errors
	}
	if brokenReq != 9 || brokenEst != 9 || brokenErr != 9 || broken.InputTokens == 0 || broken.OutputTokens == 0 {
		t.Errorf("broken streams in the ledger: %+v requests=%d estimated=%d errors=%d, want 9 each and input and output seen", broken, brokenReq, brokenEst, brokenErr)
	}
	exact := want
	want = want.Add(broken)

	// 2. The Prometheus counters.
	mfs, err := g.Metrics().Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var prom bedrock.Usage
	for _, mf := range mfs {
		if mf.GetName() != "gateway_tokens_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			v := int64(m.GetCounter().GetValue())
			switch label(m, "type") {
			case "input":
				prom.InputTokens += v
			case "output":
				prom.OutputTokens += v
			case "cache_read":
				prom.CacheReadTokens += v
			case "cache_write":
				prom.CacheWriteTokens += v
			}
		}
	}
	if prom != want {
		t.Errorf("prometheus %+v, simulator %+v", prom, want)
	}

	// 3. The report, through the CLI, in every grouping and format.
	month := time.Now().UTC().Format("2006-01")
	for _, by := range []string{"team", "account", "entitlement", "model"} {
		var rep report.Report
		if code := g.admin(t, "GET", "/admin/v1/usage?month="+month+"&group_by="+by, nil, &rep); code != 200 {
			t.Fatalf("usage by %s: %d", by, code)
		}
		got := bedrock.Usage{InputTokens: rep.Totals.InputTokens, OutputTokens: rep.Totals.OutputTokens,
			CacheReadTokens: rep.Totals.CacheReadTokens, CacheWriteTokens: rep.Totals.CacheWriteTokens}
		if got != want {
			t.Errorf("report by %s totals %+v, simulator %+v", by, got, want)
		}
		if by == "team" && len(rep.Rows) != 3 {
			t.Errorf("report by team has %d rows: %+v", len(rep.Rows), rep.Rows)
		}
	}
	var out bytes.Buffer
	env := cli.Env{Stdout: &out, Stderr: &bytes.Buffer{}, Getenv: func(k string) string {
		return map[string]string{"GATEWAY_ADMIN_TOKEN": adminToken, "GATEWAY_ADMIN_URL": "http://" + g.OpsAddr()}[k]
	}}
	if err := cli.Run(ctx, []string{"usage", "--month", month, "--by", "team", "--format", "csv"}, env); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if lines[0] != report.CSVHeader ||
		!strings.HasPrefix(lines[len(lines)-1], month+",,,,,") || len(lines) != 5 {
		t.Errorf("CSV report:\n%s", out.String())
	}
	wantTotal := fmt.Sprintf(",%d,%d,%d,%d,%d,", want.InputTokens, want.OutputTokens, want.CacheReadTokens, want.CacheWriteTokens,
		want.InputTokens+want.OutputTokens+want.CacheReadTokens+want.CacheWriteTokens)
	if !strings.Contains(lines[len(lines)-1], wantTotal) || !strings.HasSuffix(lines[len(lines)-1], ",9,,") {
		t.Errorf("CSV totals %q do not carry %q and 9 estimated requests", lines[len(lines)-1], wantTotal)
	}
	t.Logf("reconciled %+v exact and %+v estimated across the ledger, Prometheus and the report", exact, broken)
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}
