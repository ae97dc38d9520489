package server

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	brtypes "github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"

	"github.com/bedrock-gateway/gateway/internal/bedrock"
	"github.com/bedrock-gateway/gateway/internal/quota"
	"github.com/bedrock-gateway/gateway/internal/sim"
	"github.com/bedrock-gateway/gateway/internal/testutil/redistest"
	"github.com/bedrock-gateway/gateway/internal/testutil/wait"
)

func capState(limit int64, estimate string) string {
	return baseState + fmt.Sprintf(`
entitlements:
  - name: capped
    model: %s
    limits: {monthly_tokens: %d, estimate: %s}
    shares: [{target: ou-ab12-platform}]
`, haiku, limit, estimate)
}

// capUsed returns the settled tokens of the entitlement-level cap this month,
// once the replica returned its leases (so Reserved counts calls in flight
// and what other replicas hold, not this one's idle lease).
func capUsed(t *testing.T, g *gateway, name string, limit int64) quota.CapStatus {
	t.Helper()
	ctx := context.Background()
	g.Limiter().DropLeases()
	if err := g.Limiter().Flush(ctx); err != nil {
		t.Fatal(err)
	}
	st, err := g.Limiter().Status(ctx, name, []quota.Cap{{Level: quota.LevelEntitlement, Target: name, Limit: limit}})
	if err != nil || len(st) != 1 {
		t.Fatalf("status: %v %v", st, err)
	}
	return st[0]
}

func ledgerTotal(t *testing.T, g *gateway, name string) (bedrock.Usage, int64) {
	t.Helper()
	ctx := context.Background()
	if err := g.Limiter().Flush(ctx); err != nil {
		t.Fatal(err)
	}
	rows, err := g.Limiter().Ledger(ctx, time.Now().UTC().Format("2006-01"), []string{name})
	if err != nil {
		t.Fatal(err)
	}
	var u bedrock.Usage
	var requests int64
	for _, r := range rows {
		u = u.Add(bedrock.Usage{InputTokens: r.InputTokens, OutputTokens: r.OutputTokens, CacheReadTokens: r.CacheReadTokens, CacheWriteTokens: r.CacheWriteTokens})
		requests += r.Requests
	}
	return u, requests
}

// TestCapsHoldUnderConcurrency drives 200 concurrent SDK clients at a cap that
// admits only part of them.
func TestCapsHoldUnderConcurrency(t *testing.T) {
	t.Parallel()
	const clients = 200
	for _, mode := range []string{"strict", "typical"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			const limit = 6000
			rs := redistest.Start(t)
			up := newUpstream(t, sim.Options{})
			g := startGateway(t, gatewayOptions{redis: rs.URL(), upstream: up, stateYAML: capState(limit, mode)})
			// Single-letter words: the simulator counts one token per word, so a
			// typical (bytes/4) estimate falls short of the real input.
			prompt := strings.TrimSpace(strings.Repeat("a ", 60))
			const maxTokens = 16
			var admitted, refused, other atomic.Int64
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := 0; i < clients; i++ {
				c := g.client(t, devAKID, devSecret)
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					for j := 0; j < 4; j++ {
						_, err := c.Converse(context.Background(), &bedrockruntime.ConverseInput{ModelId: aws.String("capped"), Messages: userMessage(prompt),
							InferenceConfig: &brtypes.InferenceConfiguration{MaxTokens: aws.Int32(maxTokens)}})
						switch code := errCode(err); code {
						case "":
							admitted.Add(1)
						case "ServiceQuotaExceededException":
							refused.Add(1)
						default:
							other.Add(1)
							t.Errorf("unexpected error: %v", err)
						}
					}
				}()
			}
			close(start)
			wg.Wait()
			st := capUsed(t, g, "capped", limit)
			reported := up.sim.Totals()
			t.Logf("%s: %d admitted, %d refused; cap %d, settled %d, reserved %d, simulator reported %d",
				mode, admitted.Load(), refused.Load(), limit, st.Used, st.Reserved, reported.Total())
			if refused.Load() == 0 || admitted.Load() == 0 {
				t.Fatalf("the cap should admit only part of the load")
			}
			if st.Used != reported.Total() {
				t.Errorf("settled %d tokens, the simulator reported %d for the admitted calls", st.Used, reported.Total())
			}
			if st.Reserved != 0 {
				t.Errorf("%d tokens still reserved after every call finished", st.Reserved)
			}
			ledger, requests := ledgerTotal(t, g, "capped")
			if ledger != reported || requests != admitted.Load() {
				t.Errorf("ledger %+v over %d requests, simulator %+v over %d admitted calls", ledger, requests, reported, admitted.Load())
			}
			switch mode {
			case "strict":
				if st.Used > limit {
					t.Errorf("strict: settled %d exceeds the cap %d", st.Used, limit)
				}
			case "typical":
				// Each admitted call may exceed its estimate by its estimation
				// error; only calls in flight when the cap filled can push past it.
				var maxErr int64
				for _, o := range up.sim.Requests() {
					est := (int64(len(o.Body))+3)/4 + maxTokens
					if e := o.Usage.Total() - est; e > maxErr {
						maxErr = e
					}
				}
				bound := int64(limit) + clients*maxErr
				t.Logf("typical: overshoot %d tokens; one request's estimation error is at most %d", st.Used-limit, maxErr)
				if st.Used > bound {
					t.Errorf("typical: settled %d exceeds cap plus in-flight estimation error (%d)", st.Used, bound)
				}
			}
		})
	}
}

// TestCapLevelsBindInTurn checks through the gateway that the entitlement, the
// share and the account caps each refuse when they are the one spent, naming it.
func TestCapLevelsBindInTurn(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	up := newUpstream(t, sim.Options{})
	st := baseState + `
entitlements:
  - {name: ent-cap, model: amazon.nova-lite-v1:0, limits: {monthly_tokens: 1000, estimate: strict}, shares: [{target: o-testorg0001}]}
  - {name: share-cap, model: amazon.nova-micro-v1:0, limits: {estimate: strict}, shares: [{target: ou-ab12-platform, monthly_tokens: 1000}]}
  - {name: account-cap, model: amazon.nova-pro-v1:0, limits: {account_monthly_tokens: 1000, estimate: strict}, shares: [{target: o-testorg0001}]}
`
	g := startGateway(t, gatewayOptions{redis: rs.URL(), upstream: up, stateYAML: st})
	c := g.client(t, devAKID, devSecret)
	ds := g.client(t, dsAKID, dsSecret)
	for name, want := range map[string]string{"ent-cap": "entitlement ent-cap", "share-cap": "to ou-ab12-platform", "account-cap": "account 222222222222"} {
		var err error
		for i := 0; i < 100 && err == nil; i++ {
			_, err = converse(context.Background(), c, name, 10)
		}
		if errCode(err) != "ServiceQuotaExceededException" || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "resets at") {
			t.Errorf("%s: got %v, want a spent cap naming %q", name, err, want)
		}
	}
	// The share and account caps bind per share and per account: another
	// account outside the OU still has its own allowance.
	if _, err := converse(context.Background(), ds, "account-cap", 10); err != nil {
		t.Errorf("account-cap for another account: %v", err)
	}
	for _, name := range []string{"ent-cap", "share-cap"} {
		limit := int64(1000)
		level := quota.LevelEntitlement
		target := name
		if name == "share-cap" {
			level, target = quota.LevelShare, "ou-ab12-platform"
		}
		if err := g.Limiter().Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		st, err := g.Limiter().Status(context.Background(), name, []quota.Cap{{Level: level, Target: target, Limit: limit}})
		if err != nil || st[0].Used > limit || st[0].Used == 0 {
			t.Errorf("%s: status %+v %v", name, st, err)
		}
	}
	// The remaining tokens travel on every admitted response.
	resp := rawConverse(t, g, "account-cap", dsAKID, dsSecret)
	if resp.Header.Get("X-Gateway-Quota-Remaining-Tokens") == "" || resp.Header.Get("X-Gateway-Entitlement") != "account-cap" {
		t.Errorf("missing gateway headers: %v", resp.Header)
	}
}

// rawConverse makes one Converse call with the SDK and returns the raw HTTP response.
func rawConverse(t *testing.T, g *gateway, model, akid, secret string) *http.Response {
	t.Helper()
	var raw *http.Response
	c := g.client(t, akid, secret)
	_, err := c.Converse(context.Background(), &bedrockruntime.ConverseInput{ModelId: aws.String(model), Messages: userMessage("hi"),
		InferenceConfig: &brtypes.InferenceConfiguration{MaxTokens: aws.Int32(5)}},
		func(o *bedrockruntime.Options) {
			o.HTTPClient = sim.SDKHTTPClient(doerFunc(func(r *http.Request) (*http.Response, error) {
				resp, err := http.DefaultTransport.RoundTrip(r)
				raw = resp
				return resp, err
			}))
		})
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

type doerFunc func(*http.Request) (*http.Response, error)

func (f doerFunc) Do(r *http.Request) (*http.Response, error) { return f(r) }

// TestRedisOutage stops Redis under load and starts it again: fail_closed
// entitlements answer 503 and recover by themselves; fail_open ones keep
// serving, and the ledger is complete once Redis is back.
func TestRedisOutage(t *testing.T) {
	t.Parallel()
	// Append-only persistence so the state survives the restart, as in production.
	rs := redistest.Start(t, "--appendonly", "yes", "--appendfsync", "always")
	up := newUpstream(t, sim.Options{})
	st := baseState + `
entitlements:
  - {name: closed, model: amazon.nova-lite-v1:0, limits: {monthly_tokens: 100000000}, shares: [{target: o-testorg0001}]}
  - {name: open, model: amazon.nova-micro-v1:0, limits: {monthly_tokens: 100000000, on_store_unavailable: fail_open}, shares: [{target: o-testorg0001}]}
`
	g := startGateway(t, gatewayOptions{redis: rs.URL(), upstream: up, stateYAML: st})
	c := g.client(t, devAKID, devSecret)
	ctx := context.Background()
	openCalls := 0
	for _, m := range []string{"closed", "open"} {
		if _, err := converse(ctx, c, m, 8); err != nil {
			t.Fatalf("%s before the outage: %v", m, err)
		}
	}
	openCalls++

	rs.Stop()
	// With quota leases the replica may spend what it already holds in Redis
	// until it notices the outage: at its next batch write under traffic
	// (every 500ms), or its health ping when idle.
	wait.Until(t, "fail_closed to refuse during the outage", 20*time.Second, func() error {
		if _, err := converse(ctx, c, "closed", 8); errCode(err) != "ServiceUnavailableException" {
			return fmt.Errorf("fail_closed during the outage: %v", err)
		}
		return nil
	})
	for i := 0; i < 20; i++ {
		if _, err := converse(ctx, c, "open", 8); err != nil {
			t.Fatalf("fail_open during the outage: %v", err)
		}
		openCalls++
	}
	if body := readyz(t, g); !strings.Contains(body, "degraded") {
		t.Errorf("readyz during the outage: %q", body)
	}

	rs.Restart()
	wait.For(t, "fail_closed to recover", 20*time.Second, func() bool {
		_, err := converse(ctx, c, "closed", 8)
		return err == nil
	})
	if _, err := converse(ctx, c, "open", 8); err != nil {
		t.Fatal(err)
	}
	openCalls++
	wait.For(t, "the queued usage to be written", 20*time.Second, func() bool {
		_, n := ledgerTotal(t, g, "open")
		return n == int64(openCalls)
	})
	var want bedrock.Usage
	for _, o := range up.sim.Requests() {
		if o.ModelID == "amazon.nova-micro-v1:0" {
			want = want.Add(o.Usage)
		}
	}
	if got, n := ledgerTotal(t, g, "open"); got != want || n != int64(openCalls) {
		t.Fatalf("fail_open ledger after the outage: %+v over %d requests, simulator reported %+v over %d", got, n, want, openCalls)
	}
	if body := readyz(t, g); !strings.Contains(body, "ready") || strings.Contains(body, "degraded") {
		t.Errorf("readyz after recovery: %q", body)
	}
}

func readyz(t *testing.T, g *gateway) string {
	t.Helper()
	resp, err := http.Get("http://" + g.OpsAddr() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
