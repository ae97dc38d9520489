package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
)

// Persistence is what the Redis servers behind a client keep across a restart.
// The state, the ledger and every cap's usage live only in Redis: a server that
// restarts with neither an append-only file nor RDB snapshots comes back empty.
type Persistence struct {
	// Nodes is how many servers were asked (every master in cluster mode).
	Nodes int
	// AOF and RDB report whether every node asked has the append-only file
	// (appendonly yes) or RDB snapshots (a non-empty save schedule) enabled.
	AOF, RDB bool
}

// Enabled reports whether every node keeps its data across a restart in some form.
func (p Persistence) Enabled() bool { return p.AOF || p.RDB }

// ErrPersistenceUnknown means Redis refused to show its configuration (managed
// services commonly rename or disable CONFIG). Other errors (Redis unreachable)
// are returned as they are: the settings may be readable once it answers.
var ErrPersistenceUnknown = errors.New("store: Redis persistence settings cannot be read")

// CheckPersistence reads the persistence settings of every server behind client
// with CONFIG GET: the one server of a single-node or Sentinel client, every
// master of a cluster. A node counts as persistent when appendonly is yes or
// save is not empty; the result is persistent only when all nodes are.
func CheckPersistence(ctx context.Context, client redis.UniversalClient) (Persistence, error) {
	var (
		mu       sync.Mutex
		p        = Persistence{AOF: true, RDB: true}
		nodeErrs []error
	)
	check := func(ctx context.Context, c *redis.Client) error {
		aof, rdb, err := nodePersistence(ctx, c)
		if err != nil && !refused(err) {
			return fmt.Errorf("reading Redis persistence settings of %s: %w", c.Options().Addr, err)
		}
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			nodeErrs = append(nodeErrs, fmt.Errorf("%s: %w", c.Options().Addr, err))
			return nil
		}
		p.Nodes++
		p.AOF = p.AOF && aof
		p.RDB = p.RDB && rdb
		return nil
	}
	var err error
	switch c := client.(type) {
	case *redis.ClusterClient:
		err = c.ForEachMaster(ctx, check)
	case *redis.Client:
		err = check(ctx, c)
	default:
		return Persistence{}, fmt.Errorf("%w: unsupported client type %T", ErrPersistenceUnknown, client)
	}
	if err != nil && refused(err) {
		nodeErrs = append(nodeErrs, err)
		err = nil
	}
	if err != nil {
		return Persistence{}, err
	}
	if len(nodeErrs) > 0 {
		return Persistence{}, fmt.Errorf("%w: %w", ErrPersistenceUnknown, errors.Join(nodeErrs...))
	}
	if p.Nodes == 0 {
		return Persistence{}, fmt.Errorf("%w: no Redis node answered", ErrPersistenceUnknown)
	}
	return p, nil
}

// errNoSetting means CONFIG GET answered without the setting asked for.
var errNoSetting = errors.New("CONFIG GET returned nothing")

// refused tells a server's refusal (an error reply such as an unknown or
// disabled CONFIG command) from failing to reach it.
func refused(err error) bool {
	var re redis.Error
	return errors.Is(err, errNoSetting) || errors.As(err, &re) && !errors.Is(err, redis.ErrClosed)
}

func nodePersistence(ctx context.Context, c *redis.Client) (aof, rdb bool, err error) {
	vals, err := c.ConfigGet(ctx, "appendonly").Result()
	if err != nil {
		return false, false, err
	}
	v, ok := vals["appendonly"]
	if !ok {
		return false, false, fmt.Errorf("appendonly: %w", errNoSetting)
	}
	aof = strings.EqualFold(v, "yes")
	vals, err = c.ConfigGet(ctx, "save").Result()
	if err != nil {
		return false, false, err
	}
	save, ok := vals["save"]
	if !ok {
		return false, false, fmt.Errorf("save: %w", errNoSetting)
	}
	rdb = strings.TrimSpace(save) != ""
	return aof, rdb, nil
}
