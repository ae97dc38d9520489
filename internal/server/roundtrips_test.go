package server

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/bedrock-gateway/gateway/internal/testutil/redistest"
)

// TestRoundTripHook: one count per command and one per pipeline, however
// many commands it carries.
func TestRoundTripHook(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	c := redis.NewClient(&redis.Options{Addr: rs.Addr, PoolSize: 1})
	defer c.Close()
	var n atomic.Int64
	c.AddHook(roundTripHook{count: func() { n.Add(1) }})
	ctx := context.Background()
	tcs := []struct {
		name string
		do   func() error
		want int64
	}{
		{"a command", func() error { return c.Set(ctx, "k", "v", 0).Err() }, 1},
		{"a pipeline of three", func() error {
			_, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
				p.Get(ctx, "k")
				p.Incr(ctx, "n")
				p.Del(ctx, "k")
				return nil
			})
			return err
		}, 1},
		{"a transaction", func() error {
			_, err := c.TxPipelined(ctx, func(p redis.Pipeliner) error { p.Incr(ctx, "n"); return nil })
			return err
		}, 1},
	}
	// A connection's set-up commands (HELLO, CLIENT SETINFO) are round
	// trips too and counted as such: run everything once so that set-up is
	// done, then compare.
	for _, tc := range tcs {
		if err := tc.do(); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
	}
	for _, tc := range tcs {
		before := n.Load()
		if err := tc.do(); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := n.Load() - before; got != tc.want {
			t.Errorf("%s: %d round trips counted, want %d", tc.name, got, tc.want)
		}
	}
}
