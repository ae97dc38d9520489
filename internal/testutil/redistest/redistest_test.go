package redistest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bedrock-gateway/gateway/internal/testutil/wait"
)

func TestStartAndCluster(t *testing.T) {
	t.Parallel()
	s := Start(t)
	if err := s.Client(t).Ping(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	c := StartCluster(t, 3)
	cl := c.Client(t)
	ctx := context.Background()
	for _, k := range []string{"a", "b", "c", "{x}1", "{x}2"} {
		if err := cl.Set(ctx, k, "v", 0).Err(); err != nil {
			t.Fatalf("set %s: %v", k, err)
		}
	}
}

// TestFreezeThaw: a frozen server times calls out, then runs what it was sent
// while frozen once thawed.
func TestFreezeThaw(t *testing.T) {
	t.Parallel()
	s := Start(t)
	c := redis.NewClient(&redis.Options{Addr: s.Addr, ContextTimeoutEnabled: true, MaxRetries: -1})
	t.Cleanup(func() { _ = c.Close() })
	bg := context.Background()
	if err := c.Ping(bg).Err(); err != nil {
		t.Fatal(err)
	}
	s.Freeze()
	ctx, cancel := context.WithTimeout(bg, 100*time.Millisecond)
	err := c.Set(ctx, "k", "sent while frozen", 0).Err()
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("SET on a frozen server: %v, want a timeout", err)
	}
	s.Thaw()
	wait.Until(t, "the command sent while frozen to run after thawing", 10*time.Second, func() error {
		v, err := c.Get(bg, "k").Result()
		if err == nil && v != "sent while frozen" {
			err = fmt.Errorf("k = %q", v)
		}
		return err
	})
}
