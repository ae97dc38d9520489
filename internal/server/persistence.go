package server

import (
	"context"
	"errors"
	"time"

	"github.com/bedrock-gateway/gateway/internal/store"
)

// persistenceInterval is how often Redis's persistence settings are re-read:
// an operator may turn persistence off (or on) without restarting the gateway.
const persistenceInterval = 10 * time.Minute

// watchPersistence reads Redis's persistence settings at start and then
// periodically, and says so (log and gateway_store_persistence_enabled) when a
// restart of Redis would lose the state, the ledger and every cap's usage.
func (s *Server) watchPersistence(ctx context.Context) {
	if s.embeddedRedis {
		// Already announced loudly at start: the embedded Redis keeps nothing.
		return
	}
	t := time.NewTicker(persistenceInterval)
	defer t.Stop()
	var last persistenceReport
	for {
		last = s.checkPersistence(ctx, last)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

type persistenceReport int

const (
	persistenceNotChecked persistenceReport = iota
	persistenceOn
	persistenceOff
	persistenceUnknown
	persistenceUnreachable
)

// checkPersistence checks once and logs only when the outcome differs from
// the last one, so a misconfigured Redis is one warning, not one per interval.
func (s *Server) checkPersistence(ctx context.Context, last persistenceReport) persistenceReport {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	p, err := store.CheckPersistence(cctx, s.rdb)
	switch {
	case err == nil && p.Enabled():
		s.metrics.SetStorePersistence(true, true)
		if last != persistenceOn {
			s.log.Info("Redis persistence is on", "aof", p.AOF, "rdb_snapshots", p.RDB, "nodes", p.Nodes)
		}
		return persistenceOn
	case err == nil:
		s.metrics.SetStorePersistence(true, false)
		if last != persistenceOff {
			s.log.Warn("REDIS PERSISTENCE IS OFF: neither the append-only file nor RDB snapshots are enabled, "+
				"so a Redis restart loses the gateway's state, the usage ledger and every cap's usage this month. "+
				"Set appendonly yes (recommended: appendfsync everysec) or a save schedule; see docs/operations.md, failure modes.",
				"nodes", p.Nodes)
		}
		return persistenceOff
	case errors.Is(err, store.ErrPersistenceUnknown):
		s.metrics.SetStorePersistence(false, false)
		if last != persistenceUnknown {
			s.log.Warn("Redis persistence cannot be checked: the server refuses CONFIG GET (as managed services do). "+
				"Verify by hand that the append-only file (appendonly yes) or RDB snapshots are enabled, "+
				"or a Redis restart loses the gateway's state and usage.", "error", err)
		}
		return persistenceUnknown
	default:
		// Redis unreachable: keep the last known value; the store-degraded
		// signals report the outage itself.
		if last == persistenceNotChecked {
			s.log.Debug("Redis persistence not checked yet", "error", err)
		}
		return last
	}
}
