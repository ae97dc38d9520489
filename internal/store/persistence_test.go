package store

import (
	"context"
	"errors"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/bedrock-gateway/gateway/internal/testutil/redistest"
)

func TestCheckPersistence(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		args     []string
		aof, rdb bool
	}{
		{"none", nil, false, false},
		{"aof", []string{"--appendonly", "yes"}, true, false},
		{"rdb", []string{"--save", "900 1"}, false, true},
		{"both", []string{"--appendonly", "yes", "--save", "60 1000"}, true, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := redistest.Start(t, tc.args...)
			p, err := CheckPersistence(context.Background(), srv.Client(t))
			if err != nil {
				t.Fatal(err)
			}
			if p.AOF != tc.aof || p.RDB != tc.rdb || p.Nodes != 1 || p.Enabled() != (tc.aof || tc.rdb) {
				t.Fatalf("got %+v, want aof=%v rdb=%v on 1 node", p, tc.aof, tc.rdb)
			}
		})
	}
}

func TestCheckPersistenceCluster(t *testing.T) {
	t.Parallel()
	c := redistest.StartCluster(t, 3)
	client := c.Client(t)
	ctx := context.Background()
	p, err := CheckPersistence(ctx, client)
	if err != nil {
		t.Fatal(err)
	}
	if p.Nodes != 3 || p.Enabled() {
		t.Fatalf("got %+v, want 3 nodes without persistence", p)
	}
	// One master with RDB snapshots is not enough: the others still lose
	// their shards. (A save schedule writes nothing during the test, unlike
	// turning AOF on, which starts a rewrite into the node's directory.)
	one := redis.NewClient(&redis.Options{Addr: c.Addrs()[0]})
	defer one.Close()
	if err := one.ConfigSet(ctx, "save", "3600 1").Err(); err != nil {
		t.Fatal(err)
	}
	if p, err = CheckPersistence(ctx, client); err != nil || p.RDB || p.Enabled() {
		t.Fatalf("one persistent master of three: got %+v, %v; want not enabled", p, err)
	}
}

// A server that refuses CONFIG (as managed services do) gives an unknown result, not a guess.
func TestCheckPersistenceRefused(t *testing.T) {
	t.Parallel()
	mr := miniredis.RunT(t) // miniredis does not implement CONFIG
	c := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer c.Close()
	_, err := CheckPersistence(context.Background(), c)
	if !errors.Is(err, ErrPersistenceUnknown) {
		t.Fatalf("got %v, want ErrPersistenceUnknown", err)
	}
}
