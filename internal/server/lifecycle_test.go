package server

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/bedrock-gateway/gateway/internal/testutil/sdktest"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	brtypes "github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"

	"github.com/bedrock-gateway/gateway/internal/sim"
	"github.com/bedrock-gateway/gateway/internal/testutil/redistest"
	"github.com/bedrock-gateway/gateway/internal/testutil/wait"
)

// TestCertificateReload replaces the certificate files under a running
// listener: new connections get the new certificate without a restart.
func TestCertificateReload(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	up := newUpstream(t, sim.Options{})
	dir := t.TempDir()
	certFile, keyFile, _ := selfSignedCert(t, dir, "gw")
	g := startGateway(t, gatewayOptions{redis: rs.URL(), upstream: up, args: []string{"--tls-cert", certFile, "--tls-key", keyFile}})
	serial := func() string {
		conn, err := tls.Dial("tcp", g.DataAddr(), &tls.Config{InsecureSkipVerify: true}) // reading the served certificate only
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	before := serial()
	// Write the new pair under the same names (as cert-manager or a secret mount does).
	newDir := t.TempDir()
	nc, nk, _ := selfSignedCert(t, newDir, "gw")
	for src, dst := range map[string]string{nc: certFile, nk: keyFile} {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		writeAtomic(t, dst, b)
	}
	wait.For(t, "the new certificate to be served", 10*time.Second, func() bool { return serial() != before })
}

// TestGracefulDrain: on shutdown, a stream in flight finishes (the client sees
// the whole stream) and its usage is settled, while new connections are refused.
func TestGracefulDrain(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	up := newUpstream(t, sim.Options{})
	g := startGateway(t, gatewayOptions{redis: rs.URL(), upstream: up, stateYAML: capState(1_000_000, "strict")})
	c := g.client(t, devAKID, devSecret, sdktest.WithHeaders("X-Sim-Event-Delay", "20ms"))
	out, err := c.ConverseStream(context.Background(), &bedrockruntime.ConverseStreamInput{ModelId: aws.String("capped"), Messages: userMessage("drain me"),
		InferenceConfig: &brtypes.InferenceConfiguration{MaxTokens: aws.Int32(20)}})
	if err != nil {
		t.Fatal(err)
	}
	events := out.GetStream().Events()
	<-events
	g.cancel() // what SIGTERM does in cmd/gateway
	var gotMeta bool
	for ev := range events {
		if _, ok := ev.(*brtypes.ConverseStreamOutputMemberMetadata); ok {
			gotMeta = true
		}
	}
	if err := out.GetStream().Err(); err != nil || !gotMeta {
		t.Fatalf("stream cut by shutdown: metadata=%v err=%v", gotMeta, err)
	}
	if err := <-g.done; err != nil {
		t.Fatal(err)
	}
	g.done <- nil // for the cleanup's stop()
	// The settlement was written before the process would exit.
	rows := ledgerRows(t, rs, "capped")
	if !strings.Contains(rows, "|output") {
		t.Fatalf("no ledger entry after drain: %s", rows)
	}
	if _, err := http.Get("http://" + g.DataAddr()); err == nil {
		t.Errorf("the data listener still accepts connections after shutdown")
	}
}

// ledgerRows dumps the raw ledger hash of an entitlement for this month.
func ledgerRows(t *testing.T, rs *redistest.Server, entitlement string) string {
	t.Helper()
	key := "gw:{ent:" + entitlement + "}:ledger:" + time.Now().UTC().Format("2006-01")
	m, err := rs.Client(t).HGetAll(context.Background(), key).Result()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for k, v := range m {
		b.WriteString(k + "=" + v + " ")
	}
	return b.String()
}

// TestShutdownCutsLongStream: a stream still running at --shutdown-timeout is
// ended with a serviceUnavailableException event (the SDK reports an error,
// not a clean end), its reservation is settled before the gateway exits, and
// the gateway says what it cut.
func TestShutdownCutsLongStream(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	up := newUpstream(t, sim.Options{})
	g := startGateway(t, gatewayOptions{redis: rs.URL(), upstream: up, stateYAML: capState(1_000_000, "strict"),
		args: []string{"--shutdown-timeout", "500ms"}})
	// 400 output tokens a second apart: far longer than the shutdown timeout.
	c := g.client(t, devAKID, devSecret, sdktest.WithHeaders("X-Sim-Event-Delay", "1s"))
	out, err := c.ConverseStream(context.Background(), &bedrockruntime.ConverseStreamInput{ModelId: aws.String("capped"), Messages: userMessage("a long answer"),
		InferenceConfig: &brtypes.InferenceConfiguration{MaxTokens: aws.Int32(400)}})
	if err != nil {
		t.Fatal(err)
	}
	events := out.GetStream().Events()
	<-events
	g.cancel()
	var gotMeta bool
	for ev := range events {
		if _, ok := ev.(*brtypes.ConverseStreamOutputMemberMetadata); ok {
			gotMeta = true
		}
	}
	err = out.GetStream().Err()
	var unavailable *brtypes.ServiceUnavailableException
	if gotMeta || !errors.As(err, &unavailable) || !strings.Contains(unavailable.ErrorMessage(), "shutting down") {
		t.Fatalf("cut stream: metadata=%v err=%v, want a ServiceUnavailableException saying the gateway is shutting down", gotMeta, err)
	}
	if err := <-g.done; err != nil {
		t.Fatal(err)
	}
	g.done <- nil // for the cleanup's stop()
	if rows := ledgerRows(t, rs, "capped"); !strings.Contains(rows, "|requests=1") {
		t.Fatalf("the cut call was not settled before exit: %s", rows)
	}
	if n := g.proxy.Cut(); n != 1 {
		t.Errorf("calls cut = %d, want 1", n)
	}
}
