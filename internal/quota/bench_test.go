package quota

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/bedrock-gateway/gateway/internal/bedrock"
	"github.com/bedrock-gateway/gateway/internal/testutil/redistest"
)

// BenchmarkReserveSettle measures one admission (Reserve, a synchronous round
// trip) plus its queued Settle against a local redis-server, with three caps
// and both rate limits; the queue is flushed before the timer stops.
func BenchmarkReserveSettle(b *testing.B) {
	s := redistest.Start(b)
	l := newTestLimiter(b, singleClient(b, s), Options{})
	ent := "bench"
	req := Request{Entitlement: ent, Account: acct, Model: "anthropic.claude-3-5-haiku-20241022-v1:0",
		Caps:              threeCaps(ent, 1<<50, 1<<50, 1<<50),
		RequestsPerMinute: 1 << 30, TokensPerMinute: 1 << 40, Tokens: 1200}
	usage := bedrock.Usage{InputTokens: 700, OutputTokens: 300}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r, err := l.Reserve(ctx, req)
			if err != nil {
				b.Error(err)
				return
			}
			if err := l.Settle(ctx, r, 1000, usage); err != nil {
				b.Error(err)
				return
			}
		}
	})
	flush(b, l)
	b.StopTimer()
	b.ReportMetric(float64(time.Since(start).Microseconds())/float64(b.N), "µs/req")
}

// BenchmarkPingBaseline is the floor for BenchmarkReserveSettle on the same
// machine: one bare round trip to a local redis-server.
func BenchmarkPingBaseline(b *testing.B) {
	s := redistest.Start(b)
	c := singleClient(b, s)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := c.Ping(ctx).Err(); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkReserveLatency reports the distribution of the synchronous part (the
// reserve round trip a request waits for) from one client at a time, with
// settlements flowing through the batched queue as in production.
func BenchmarkReserveLatency(b *testing.B) {
	s := redistest.Start(b)
	l := newTestLimiter(b, singleClient(b, s), Options{})
	ent := "bench"
	req := Request{Entitlement: ent, Account: acct, Model: "anthropic.claude-3-5-haiku-20241022-v1:0",
		Caps:              threeCaps(ent, 1<<50, 1<<50, 1<<50),
		RequestsPerMinute: 1 << 30, TokensPerMinute: 1 << 40, Tokens: 1200}
	usage := bedrock.Usage{InputTokens: 700, OutputTokens: 300}
	ctx := context.Background()
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		r, err := l.Reserve(ctx, req)
		lat = append(lat, time.Since(t0))
		if err != nil {
			b.Fatal(err)
		}
		if err := l.Settle(ctx, r, 1000, usage); err != nil {
			b.Fatal(err)
		}
	}
	flush(b, l)
	b.StopTimer()
	slices.Sort(lat)
	pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) }
	b.ReportMetric(pct(0.50), "reserve-p50-µs")
	b.ReportMetric(pct(0.99), "reserve-p99-µs")
	b.ReportMetric(pct(0.999), "reserve-p99.9-µs")
}
