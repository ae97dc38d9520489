package server

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bedrock-gateway/gateway/internal/testutil/sdktest"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	brtypes "github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"

	"github.com/bedrock-gateway/gateway/internal/quota"
	"github.com/bedrock-gateway/gateway/internal/sim"
	"github.com/bedrock-gateway/gateway/internal/testutil/redistest"
	"github.com/bedrock-gateway/gateway/internal/testutil/wait"
)

// TestCrashBetweenReserveAndSettle kills a gateway process (SIGKILL: no drain,
// no settlement) while a call holds a reservation, and checks that the
// reservation expires and the cap recovers for the surviving replica.
func TestCrashBetweenReserveAndSettle(t *testing.T) {
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
	const limit = 3000
	stateFile := filepath.Join(t.TempDir(), "state.yaml")
	if err := os.WriteFile(stateFile, []byte(capState(limit, "strict")), 0o600); err != nil {
		t.Fatal(err)
	}
	// The doomed replica, as a real process.
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

	// A stream that stalls after its first event holds its reservation.
	doomed := bedrockruntime.New(bedrockruntime.Options{BaseEndpoint: aws.String(endpoint), Region: "us-east-1",
		Credentials: staticCreds(devAKID, devSecret), Retryer: aws.NopRetryer{}}, sdktest.WithHeaders("X-Sim-Event-Delay", "1h"))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out, err := doomed.ConverseStream(ctx, &bedrockruntime.ConverseStreamInput{ModelId: aws.String("capped"), Messages: userMessage("hold on"),
		InferenceConfig: &brtypes.InferenceConfiguration{MaxTokens: aws.Int32(2000)}})
	if err != nil {
		t.Fatal(err)
	}
	<-out.GetStream().Events()

	// The survivor sees the reservation holding most of the cap.
	g := startGateway(t, gatewayOptions{redis: rs.URL(), upstream: up})
	held := capUsed(t, g, "capped", limit).Reserved
	if held < 2000 {
		t.Fatalf("reservation of the in-flight call not visible: %d reserved", held)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	c := g.client(t, devAKID, devSecret)
	big := func() error {
		_, err := converse(context.Background(), c, "capped", 2000)
		return err
	}
	if err := big(); errCode(err) != "ServiceQuotaExceededException" {
		t.Fatalf("while the dead replica's reservation holds: %v", err)
	}
	start := time.Now()
	wait.For(t, "the orphaned reservation to expire", 20*time.Second, func() bool { return big() == nil })
	t.Logf("cap recovered %v after the crash (reservation TTL 3s)", time.Since(start).Round(time.Millisecond))
	if st := capUsed(t, g, "capped", limit); st.Reserved != 0 || st.Used != up.sim.Totals().Total() {
		t.Fatalf("after recovery: %+v; simulator reported %d", st, up.sim.Totals().Total())
	}
	_ = quota.LevelEntitlement
}

// readEndpoint reads the gateway's ready message for its data URL.
func readEndpoint(t *testing.T, r interface{ Read([]byte) (int, error) }) string {
	t.Helper()
	buf := make([]byte, 0, 4096)
	tmp := make([]byte, 1024)
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		n, err := r.Read(tmp)
		buf = append(buf, tmp[:n]...)
		s := string(buf)
		if i := strings.Index(s, "serving Bedrock Runtime on "); i >= 0 {
			rest := s[i+len("serving Bedrock Runtime on "):]
			if j := strings.IndexByte(rest, ' '); j > 0 {
				return rest[:j]
			}
		}
		if err != nil {
			break
		}
	}
	t.Fatalf("gateway did not report its address: %s", buf)
	return ""
}
