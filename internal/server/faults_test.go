package server

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	brtypes "github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"
	"github.com/redis/go-redis/v9"

	"github.com/bedrock-gateway/gateway/internal/quota"
	"github.com/bedrock-gateway/gateway/internal/report"
	"github.com/bedrock-gateway/gateway/internal/sim"
	"github.com/bedrock-gateway/gateway/internal/testutil/redistest"
	"github.com/bedrock-gateway/gateway/internal/testutil/wait"
)

// waitRedisTime polls Redis TIME (the clock reservations expire by) until it
// passes t.
func waitRedisTime(t *testing.T, c *redis.Client, until time.Time) {
	t.Helper()
	wait.For(t, "Redis time to pass "+until.String(), time.Minute, func() bool {
		now, err := c.Time(context.Background()).Result()
		return err == nil && now.After(until)
	})
}

func metricsText(t *testing.T, g *gateway) string {
	t.Helper()
	resp, err := http.Get("http://" + g.OpsAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestStreamOutlivesReservationTTL: a stream running longer than
// --reservation-ttl keeps its reservation (refreshed while it runs), so a
// strict cap stays strict: requests that would overrun it are refused until
// the stream settles, and the month ends within the cap.
func TestStreamOutlivesReservationTTL(t *testing.T) {
	t.Parallel()
	const limit, ttl = 3000, 3 * time.Second
	rs := redistest.Start(t)
	release := make(chan struct{})
	up := newUpstream(t, sim.Options{OnEvent: func(r *http.Request, k int) {
		if k == 1 { // hold the stream after its first event until the test lets go
			<-release
		}
	}})
	g := startGateway(t, gatewayOptions{redis: rs.URL(), upstream: up, stateYAML: capState(limit, "strict"),
		args: []string{"--reservation-ttl", ttl.String(), "--drain-timeout", "1s"}})
	c := g.client(t, devAKID, devSecret)
	ctx := context.Background()
	redisClient := rs.Client(t)
	start, err := redisClient.Time(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}

	out, err := c.ConverseStream(ctx, &bedrockruntime.ConverseStreamInput{ModelId: aws.String("capped"), Messages: userMessage("a long answer please"),
		InferenceConfig: &brtypes.InferenceConfiguration{MaxTokens: aws.Int32(2500)}})
	if err != nil {
		close(release)
		t.Fatal(err)
	}
	stream := out.GetStream()
	defer stream.Close()
	<-stream.Events() // the call is running and holds its reservation
	held := capUsed(t, g, "capped", limit).Reserved
	if held < 2500 {
		close(release)
		t.Fatalf("the stream's reservation is not visible: %d reserved", held)
	}

	// Well past the TTL (Redis time), the reservation still holds.
	waitRedisTime(t, redisClient, start.Add(2*ttl+time.Second))
	for i := 0; i < 5; i++ {
		if _, err := converse(ctx, c, "capped", 400); errCode(err) != "ServiceQuotaExceededException" {
			close(release)
			t.Fatalf("request %d beyond the cap while the stream runs past the TTL: %v, want ServiceQuotaExceededException", i, err)
		}
	}
	if st := capUsed(t, g, "capped", limit); st.Reserved != held {
		t.Errorf("reserved %d past the TTL, want the stream's %d", st.Reserved, held)
	}

	close(release)
	for range stream.Events() {
	}
	if err := stream.Err(); err != nil {
		t.Fatalf("stream: %v", err)
	}
	// The settlement is written after the response ends: wait for it.
	wait.For(t, "the stream to settle", 20*time.Second, func() bool { return capUsed(t, g, "capped", limit).Reserved == 0 })
	st := capUsed(t, g, "capped", limit)
	if st.Used > limit || st.Used != up.sim.Totals().Total() {
		t.Errorf("month used %d of a strict cap of %d; the simulator reported %d", st.Used, limit, up.sim.Totals().Total())
	}
	if m := metricsText(t, g); strings.Contains(m, "gateway_reservations_expired_total{") {
		t.Errorf("a reservation was reported expired:\n%s", grepLines(m, "gateway_reservations_expired_total"))
	}
}

// TestReserveTimeoutDuringFreeze: Redis freezes (SIGSTOP) while a reserve is
// in flight. The caller gets a 503 at the timeout; the script runs when Redis
// thaws, and the release the gateway queued frees its tokens at once instead
// of holding them for the reservation TTL.
func TestReserveTimeoutDuringFreeze(t *testing.T) {
	t.Parallel()
	const limit = 20000
	rs := redistest.Start(t)
	up := newUpstream(t, sim.Options{})
	g := startGateway(t, gatewayOptions{redis: rs.URL(), upstream: up, stateYAML: capState(limit, "strict"),
		args: []string{"--redis-timeout", "300ms"}})
	c := g.client(t, devAKID, devSecret)
	ctx := context.Background()
	if _, err := converse(ctx, c, "capped", 10); err != nil {
		t.Fatal(err)
	}

	rs.Freeze()
	_, err := converse(ctx, c, "capped", 2000)
	rs.Thaw()
	if errCode(err) != "ServiceUnavailableException" {
		t.Fatalf("reserve on a frozen Redis: %v, want ServiceUnavailableException", err)
	}
	wait.For(t, "the timed-out reservation to be released", 20*time.Second, func() bool {
		if !g.Limiter().Healthy() {
			return false
		}
		st, err := g.Limiter().Status(ctx, "capped", []quota.Cap{{Level: quota.LevelEntitlement, Target: "capped", Limit: limit}})
		return err == nil && st[0].Reserved == 0
	})
	// The whole rest of the cap is usable: 18,500 tokens plus the body fit
	// only if the 2,000 of the timed-out reserve are not held.
	if _, err := converse(ctx, c, "capped", 18500); err != nil {
		t.Fatalf("using the rest of the cap after the thaw: %v", err)
	}
	if _, requests := ledgerTotal(t, g, "capped"); requests != 2 {
		t.Errorf("ledger counts %d requests, want the 2 that ran", requests)
	}
}

// TestQuotaAPIIgnoresExpiredReservations: a crashed replica's reservation
// stops showing as reserved in the quota API when its TTL is up, without
// waiting for a request to purge it.
func TestQuotaAPIIgnoresExpiredReservations(t *testing.T) {
	t.Parallel()
	const limit = 10000
	rs := redistest.Start(t)
	up := newUpstream(t, sim.Options{})
	g := startGateway(t, gatewayOptions{redis: rs.URL(), upstream: up, stateYAML: capState(limit, "strict")})
	ctx := context.Background()
	redisClient := rs.Client(t)
	start, err := redisClient.Time(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	// The crashed replica: it reserved and will never settle or refresh.
	const ttl = time.Second
	rc := redis.NewClient(&redis.Options{Addr: rs.Addr, ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = rc.Close() })
	crashed, err := quota.New(quota.Options{Client: rc, ReservationTTL: ttl, RefreshInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := crashed.Reserve(ctx, quota.Request{Entitlement: "capped", Account: "222222222222",
		Caps: []quota.Cap{{Level: quota.LevelEntitlement, Target: "capped", Limit: limit}}, Tokens: 4000}); err != nil {
		t.Fatal(err)
	}
	if err := crashed.Close(ctx); err != nil {
		t.Fatal(err)
	}
	var rep report.QuotaReport
	if code := g.admin(t, http.MethodGet, "/admin/v1/entitlements/capped/quota", nil, &rep); code != 200 || len(rep.Caps) != 1 || rep.Caps[0].Reserved != 4000 {
		t.Fatalf("quota before expiry: %d %+v", code, rep)
	}
	waitRedisTime(t, redisClient, start.Add(ttl+time.Second))
	if code := g.admin(t, http.MethodGet, "/admin/v1/entitlements/capped/quota", nil, &rep); code != 200 || len(rep.Caps) != 1 {
		t.Fatalf("quota after expiry: %d %+v", code, rep)
	}
	if c := rep.Caps[0]; c.Reserved != 0 || c.Remaining != limit {
		t.Errorf("quota after the crashed replica's reservation expired: reserved %d remaining %d, want 0 and %d", c.Reserved, c.Remaining, limit)
	}
}

// TestRedisRestartsEmptyMidStream: Redis restarts empty while a stream runs,
// losing its reservation. The settlement still charges the usage, and the
// lost reservation is counted in gateway_reservations_expired_total.
func TestRedisRestartsEmptyMidStream(t *testing.T) {
	t.Parallel()
	const limit = 100000
	rs := redistest.Start(t)
	release := make(chan struct{})
	up := newUpstream(t, sim.Options{OnEvent: func(r *http.Request, k int) {
		if k == 1 {
			<-release
		}
	}})
	g := startGateway(t, gatewayOptions{redis: rs.URL(), upstream: up, stateYAML: capState(limit, "strict")})
	c := g.client(t, devAKID, devSecret)
	ctx := context.Background()
	out, err := c.ConverseStream(ctx, &bedrockruntime.ConverseStreamInput{ModelId: aws.String("capped"), Messages: userMessage("hello"),
		InferenceConfig: &brtypes.InferenceConfiguration{MaxTokens: aws.Int32(100)}})
	if err != nil {
		close(release)
		t.Fatal(err)
	}
	stream := out.GetStream()
	defer stream.Close()
	<-stream.Events()
	rs.Restart() // empty: no persistence
	close(release)
	for range stream.Events() {
	}
	if err := stream.Err(); err != nil {
		t.Fatalf("stream: %v", err)
	}
	want := `gateway_reservations_expired_total{entitlement="capped"} 1`
	wait.For(t, "the lost reservation to be counted", 20*time.Second, func() bool { return strings.Contains(metricsText(t, g), want) })
	if st := capUsed(t, g, "capped", limit); st.Used != up.sim.Totals().Total() || st.Reserved != 0 {
		t.Errorf("after the settlement: %+v, want the %d tokens the simulator reported charged", st, up.sim.Totals().Total())
	}
}

func grepLines(s, substr string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
