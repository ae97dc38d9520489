package server

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	brtypes "github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"

	"github.com/bedrock-gateway/gateway/internal/cli"
	"github.com/bedrock-gateway/gateway/internal/sim"
	"github.com/bedrock-gateway/gateway/internal/testutil/redistest"
	"github.com/bedrock-gateway/gateway/internal/testutil/wait"
)

// leaseState is capState with a share cap as well (two caps per lease).
func leaseState(limit int64) string {
	return baseState + fmt.Sprintf(`
entitlements:
  - name: capped
    model: %s
    limits: {monthly_tokens: %d, estimate: strict}
    shares: [{target: ou-ab12-platform, monthly_tokens: %d}, {target: ou-ab12-ds000001}]
`, haiku, limit, 2*limit)
}

// replicasBody is GET /admin/v1/replicas.
type replicasBody struct {
	Replicas []struct {
		ID              string `json:"id"`
		SnapshotVersion uint64 `json:"snapshot_version"`
	} `json:"replicas"`
	StateVersion uint64 `json:"state_version"`
}

// waitInForce waits until the replicas' heartbeats say that n replicas serve
// the stored state version.
func waitInForce(t *testing.T, g *gateway, n int) {
	t.Helper()
	wait.Until(t, "every replica to serve the latest state", 30*time.Second, func() error {
		var body replicasBody
		if code := g.admin(t, http.MethodGet, "/admin/v1/replicas", nil, &body); code != http.StatusOK {
			return fmt.Errorf("replicas: %d", code)
		}
		in := 0
		for _, r := range body.Replicas {
			if r.SnapshotVersion >= body.StateVersion {
				in++
			}
		}
		if in < n {
			return fmt.Errorf("%d of %d replicas serve version %d: %+v", in, n, body.StateVersion, body.Replicas)
		}
		return nil
	})
}

// TestLeasesAcrossReplicas: 200 concurrent SDK clients over three replicas
// with leases (the default) on one real Redis never push a strict cap past
// its limit by one token and leave it nearly used; the ledger and the cap
// match what the simulator reported.
func TestLeasesAcrossReplicas(t *testing.T) {
	t.Parallel()
	const limit = 30_000
	rs := redistest.Start(t)
	up := newUpstream(t, sim.Options{})
	var gs [3]*gateway
	for i := range gs {
		gs[i] = startGateway(t, gatewayOptions{redis: rs.URL(), upstream: up, stateYAML: leaseState(limit)})
	}
	waitInForce(t, gs[0], 3)
	prompt := strings.TrimSpace(strings.Repeat("a ", 60))
	var admitted, refused atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range 200 {
		c := gs[i%3].client(t, devAKID, devSecret)
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for {
				_, err := c.Converse(context.Background(), &bedrockruntime.ConverseInput{ModelId: aws.String("capped"), Messages: userMessage(prompt),
					InferenceConfig: &brtypes.InferenceConfiguration{MaxTokens: aws.Int32(16)}})
				switch code := errCode(err); code {
				case "":
					admitted.Add(1)
				case "ServiceQuotaExceededException":
					refused.Add(1)
					return
				default:
					t.Errorf("unexpected error: %v", err)
					return
				}
			}
		}()
	}
	close(start)
	wg.Wait()
	for _, g := range gs {
		if err := g.Limiter().Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	st := capUsed(t, gs[0], "capped", limit)
	reported := up.sim.Totals()
	var leased, perRequest int64
	for _, g := range gs {
		leased += g.Limiter().LeaseStats().Admitted
		perRequest += g.Limiter().LeaseStats().PerRequest
	}
	t.Logf("%d admitted (%d against leases, %d on their own), %d refused; cap %d, settled %d, reserved %d, simulator %d",
		admitted.Load(), leased, perRequest, refused.Load(), limit, st.Used, st.Reserved, reported.Total())
	if st.Used > limit {
		t.Errorf("settled %d exceeds the strict cap %d", st.Used, limit)
	}
	if st.Used != reported.Total() {
		t.Errorf("settled %d, the simulator reported %d", st.Used, reported.Total())
	}
	// Every client stopped at its first refusal: what is left is less than a
	// request on each replica plus the others' last (small) leases.
	if left := limit - st.Used - st.Reserved; left > limit/10 {
		t.Errorf("%d of %d tokens neither used nor held: the cap was not nearly used", left, limit)
	}
	if leased == 0 {
		t.Error("no request was admitted against a lease")
	}
	// The lease counters are on /metrics, as the limiter counted them.
	var viaLease, viaReservation, acquired float64
	for _, g := range gs {
		viaLease += metricValue(t, g, "gateway_quota_decisions_total", "via", "lease")
		viaReservation += metricValue(t, g, "gateway_quota_decisions_total", "via", "reservation")
		acquired += metricValue(t, g, "gateway_quota_leases_acquired_total", "when", "request") +
			metricValue(t, g, "gateway_quota_leases_acquired_total", "when", "ahead")
	}
	if int64(viaLease) != leased || int64(viaReservation) != perRequest || acquired < 3 {
		t.Errorf("metrics: %v decisions via lease, %v via reservation, %v leases acquired; the limiters counted %d, %d and at least one lease per replica",
			viaLease, viaReservation, acquired, leased, perRequest)
	}
	ledger, requests := ledgerTotal(t, gs[0], "capped")
	if ledger != reported || requests != admitted.Load() {
		t.Errorf("ledger %+v over %d requests, simulator %+v over %d admitted calls", ledger, requests, reported, admitted.Load())
	}
}

// TestLeasesFollowChanges: with leases held on three replicas, a cap lowered
// below what is used, and then a revoked share, apply to the next request on
// every replica.
func TestLeasesFollowChanges(t *testing.T) {
	t.Parallel()
	const limit = 1_000_000
	rs := redistest.Start(t)
	up := newUpstream(t, sim.Options{})
	var gs [3]*gateway
	for i := range gs {
		gs[i] = startGateway(t, gatewayOptions{redis: rs.URL(), upstream: up, stateYAML: leaseState(limit)})
	}
	waitInForce(t, gs[0], 3)
	call := func(g *gateway, akid, secret string) error {
		_, err := converse(context.Background(), g.client(t, akid, secret), "capped", 16)
		return err
	}
	for _, g := range gs {
		for range 3 {
			if err := call(g, devAKID, devSecret); err != nil {
				t.Fatal(err)
			}
			if err := call(g, dsAKID, dsSecret); err != nil {
				t.Fatal(err)
			}
		}
		if g.Limiter().LeaseStats().Admitted == 0 {
			t.Fatal("no request admitted against a lease")
		}
	}
	// Lower the entitlement's cap below what is used.
	if code := gs[0].admin(t, http.MethodPatch, "/admin/v1/entitlements/capped",
		map[string]any{"limits": map[string]any{"monthly_tokens": 10, "estimate": "strict"}}, nil); code != http.StatusOK {
		t.Fatalf("lowering the cap: %d", code)
	}
	waitInForce(t, gs[0], 3)
	for i, g := range gs {
		if err := call(g, devAKID, devSecret); errCode(err) != "ServiceQuotaExceededException" {
			t.Fatalf("replica %d after the cap was lowered below used: %v", i, err)
		}
	}
	// Raise it again: leases come back; then revoke the data science share.
	if code := gs[1].admin(t, http.MethodPatch, "/admin/v1/entitlements/capped",
		map[string]any{"limits": map[string]any{"monthly_tokens": limit, "estimate": "strict"}}, nil); code != http.StatusOK {
		t.Fatalf("raising the cap: %d", code)
	}
	waitInForce(t, gs[0], 3)
	for _, g := range gs {
		if err := call(g, dsAKID, dsSecret); err != nil {
			t.Fatal(err)
		}
	}
	if code := gs[2].admin(t, http.MethodDelete, "/admin/v1/entitlements/capped/shares/ou-ab12-ds000001", nil, nil); code != http.StatusNoContent && code != http.StatusOK {
		t.Fatalf("revoking the share: %d", code)
	}
	// As an operator's script would: `gateway replicas --wait`, then call.
	var out, errOut bytes.Buffer
	env := cli.Env{Stdout: &out, Stderr: &errOut, Getenv: func(k string) string {
		switch k {
		case cli.EnvAdminToken:
			return adminToken
		case cli.EnvAdminURL:
			return "http://" + gs[0].OpsAddr()
		}
		return ""
	}}
	if err := cli.Run(context.Background(), []string{"replicas", "--wait"}, env); err != nil {
		t.Fatalf("gateway replicas --wait: %v\n%s", err, errOut.String())
	}
	if got := strings.Count(out.String(), " yes "); got != 3 {
		t.Fatalf("gateway replicas --wait printed %d replicas in force, want 3:\n%s", got, out.String())
	}
	for i, g := range gs {
		if err := call(g, dsAKID, dsSecret); errCode(err) != "AccessDeniedException" {
			t.Fatalf("replica %d after the share was revoked: %v", i, err)
		}
		if err := call(g, devAKID, devSecret); err != nil {
			t.Fatalf("replica %d, another share: %v", i, err)
		}
	}
	// Usage stays exact: the cap's used is what the simulator reported.
	for _, g := range gs {
		if err := g.Limiter().Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if st := capUsed(t, gs[0], "capped", limit); st.Used != up.sim.Totals().Total() {
		t.Fatalf("used %d, simulator reported %d", st.Used, up.sim.Totals().Total())
	}
}

// TestLeaseStrandedBySIGKILL: a gateway process killed with SIGKILL while it
// holds leases strands at most those leases, freed after the reservation TTL.
func TestLeaseStrandedBySIGKILL(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds the gateway binary")
	}
	bin := filepath.Join(t.TempDir(), "gateway")
	build := exec.Command("go", "build", "-o", bin, "github.com/bedrock-gateway/gateway/cmd/gateway")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the gateway: %v\n%s", err, out)
	}
	rs := redistest.Start(t)
	up := newUpstream(t, sim.Options{})
	const limit = 100_000
	stateFile := filepath.Join(t.TempDir(), "state.yaml")
	if err := os.WriteFile(stateFile, []byte(capState(limit, "strict")), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", "--listen", "127.0.0.1:0", "--ops-listen", "127.0.0.1:0", "--redis-url", rs.URL(),
		"--bootstrap", stateFile, "--upstream-endpoint", up.srv.URL, "--region", "us-east-1",
		"--reservation-ttl", "3s", "--drain-timeout", "1s", "--log-format", "text")
	cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID="+hubAKID, "AWS_SECRET_ACCESS_KEY="+hubSecret, "AWS_REGION=us-east-1",
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null")
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = testWriter{t}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	endpoint := readEndpoint(t, stdout)
	doomed := bedrockruntime.New(bedrockruntime.Options{BaseEndpoint: aws.String(endpoint), Region: "us-east-1",
		Credentials: staticCreds(devAKID, devSecret), Retryer: aws.NopRetryer{}})
	for range 3 {
		if _, err := converse(context.Background(), doomed, "capped", 100); err != nil {
			t.Fatal(err)
		}
	}
	g := startGateway(t, gatewayOptions{redis: rs.URL(), upstream: up})
	before := capUsed(t, g, "capped", limit)
	// The killed replica's calls all finished: what it holds is its lease.
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	st := capUsed(t, g, "capped", limit)
	t.Logf("stranded by SIGKILL: %d reserved (used %d written before the kill, %d reported)", st.Reserved, before.Used, up.sim.Totals().Total())
	// At most two leases (the current one and the one taken ahead), each
	// at most what was left over K=4 times the replicas seen (one).
	if st.Reserved <= 0 || st.Reserved > 2*limit/4 {
		t.Fatalf("reserved %d after the kill, want its leases: more than 0, at most %d", st.Reserved, 2*limit/4)
	}
	wait.For(t, "the stranded lease to expire", 30*time.Second, func() bool {
		return capUsed(t, g, "capped", limit).Reserved == 0
	})
	// Usage not yet written when it died is lost with the process (at most
	// one flush interval's worth); what was written stays.
	if st := capUsed(t, g, "capped", limit); st.Used > up.sim.Totals().Total() {
		t.Fatalf("used %d exceeds what was reported, %d", st.Used, up.sim.Totals().Total())
	}
}
