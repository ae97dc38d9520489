package store

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bedrock-gateway/gateway/internal/state"
)

// SyncOptions configure a Syncer.
type SyncOptions struct {
	// Store is required.
	Store *Store
	// Apply is required: it builds the replica's snapshot from st and swaps it
	// in atomically. It is called serially and owns st. When it fails, the last
	// good snapshot stays and the Syncer waits for the next version.
	Apply func(st *state.State, version uint64) error
	// Logger; default the Store's.
	Logger *slog.Logger
	// OnWiped, when set, hears whether the store is wiped each time that
	// changes (gauges, readiness).
	OnWiped func(wiped bool)
}

// Syncer keeps a replica's view of the state current: on every version change it
// loads the state and hands it to Apply. When loading fails it keeps the last
// good snapshot, logs, and tries again at the next poll.
type Syncer struct {
	store *Store
	apply func(*state.State, uint64) error
	log   *slog.Logger

	failing bool // only touched by sync, which Watch serializes
	// marker is the identity of the store the applied state came from; wiped
	// is set while the store has lost its data (sync only).
	marker  *Marker
	wiped   bool
	onWiped func(bool)

	mu      sync.Mutex
	ready   bool
	version uint64
	changed chan struct{} // closed and replaced after every Apply
}

// NewSyncer returns a Syncer; call Run to start it. It panics when Store or
// Apply is missing, a wiring mistake.
func NewSyncer(opts SyncOptions) *Syncer {
	if opts.Store == nil || opts.Apply == nil {
		panic("store: NewSyncer needs a Store and an Apply function")
	}
	log := opts.Logger
	if log == nil {
		log = opts.Store.log
	}
	return &Syncer{store: opts.Store, apply: opts.Apply, log: log, onWiped: opts.OnWiped, changed: make(chan struct{})}
}

// ShardCheckInterval is how often a replica on Redis Cluster checks that
// every shard still holds its marker (one EXISTS per shard, pipelined).
const ShardCheckInterval = time.Second

// Run keeps the view current until ctx ends.
func (s *Syncer) Run(ctx context.Context) {
	if _, cluster := s.store.client.(*redis.ClusterClient); cluster {
		var wg sync.WaitGroup
		defer wg.Wait()
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		wg.Go(func() { s.watchShards(ctx) })
		s.store.watch(ctx, s.sync)
		return
	}
	s.store.watch(ctx, s.sync)
}

// watchShards checks the per-shard markers until ctx ends: a shard that lost
// its data flags the whole store wiped (the sync path then reports it and
// keeps the snapshot); masters without a marker get one.
func (s *Syncer) watchShards(ctx context.Context) {
	t := time.NewTicker(ShardCheckInterval)
	defer t.Stop()
	for {
		if m, err := s.store.Marker(ctx); err == nil && m != nil && !m.Wiped {
			res, err := s.store.CheckShards(ctx, m)
			switch {
			case err != nil && ctx.Err() == nil:
				s.log.Debug("checking shard markers", "err", err)
			case len(res.Missing) > 0:
				s.log.Error("a Redis Cluster shard lost its data: its marker is gone", "missing", res.Missing)
				if err := s.store.MarkWiped(ctx, *m); err != nil {
					s.log.Error("marking the state store wiped", "err", err)
				}
				// Every replica's syncer looks at the store again, finds the
				// flag and keeps its snapshot.
				if err := s.store.notify(ctx); err != nil {
					s.log.Error("announcing the wiped store", "err", err)
				}
			case res.Added > 0:
				s.log.Info("shard markers written", "added", res.Added)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// sync loads and applies the state; an error means "try again later".
func (s *Syncer) sync(ctx context.Context, _ uint64) error {
	st, v, m, err := s.store.LoadMarked(ctx)
	if err != nil {
		if ctx.Err() == nil {
			// Retried every poll: say it loudly once per run of failures.
			level := slog.LevelError
			if s.failing {
				level = slog.LevelDebug
			}
			s.log.Log(ctx, level, "loading state; serving the last good snapshot", "err", err, "applied_version", s.Version())
			s.failing = true
		}
		return err
	}
	if s.failing {
		s.log.Info("loading state works again", "version", v)
		s.failing = false
	}
	s.mu.Lock()
	ready, applied := s.ready, s.version
	s.mu.Unlock()
	recovered := false
	if ready {
		switch keep, rec := s.checkWipe(ctx, m, v, applied); {
		case keep:
			return nil
		case rec:
			recovered = true
		}
	}
	if ready && applied == v && !recovered {
		return nil
	}
	if !ready && m != nil && m.Wiped {
		// Nothing better to serve, but say so.
		s.setWiped(true, v, applied, "the store marker says wiped")
	}
	if err := s.apply(st, v); err != nil {
		// The same version would fail the same way: wait for the next one.
		s.log.Error("applying state; serving the last good snapshot", "err", err, "version", v, "applied_version", s.Version())
		return nil
	}
	if m != nil {
		s.marker = m
	}
	s.mu.Lock()
	s.ready, s.version = true, v
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
	s.log.Debug("state applied", "version", v)
	return nil
}

// checkWipe compares what the store holds now with what this replica applied
// last. A store that lost its data (the marker gone, or flagged wiped, or the
// version gone backwards) is never applied: keep reports that the last good
// snapshot stays. recovered reports an operator's restore (the marker's epoch
// moved on): its state is applied whatever its version.
func (s *Syncer) checkWipe(ctx context.Context, m *Marker, v, applied uint64) (keep, recovered bool) {
	switch {
	case m == nil && (s.marker != nil || v < applied || (v == 0 && applied > 0)):
		// The marker vanished (Redis restarted empty, was flushed, or lost
		// the keys): put it back flagged, so every replica and the admin API
		// know, and no bootstrap seeds the empty store.
		known := Marker{}
		if s.marker != nil {
			known = *s.marker
		} else {
			known.ID = "unknown"
		}
		if err := s.store.MarkWiped(ctx, known); err != nil {
			s.log.Error("marking the state store wiped", "err", err)
		}
		s.marker = &known // the identity a restore will carry on
		s.setWiped(true, v, applied, "the store marker is gone")
		return true, false
	case m != nil && m.Wiped:
		if s.marker == nil || s.marker.ID != m.ID {
			s.marker = m // another replica flagged it: a restore carries this identity on
		}
		s.setWiped(true, v, applied, "the store marker says wiped")
		return true, false
	case m != nil && s.marker != nil && m.ID == s.marker.ID && m.Epoch > s.marker.Epoch:
		s.log.Warn("the state store was restored by an apply; taking its state", "version", v, "epoch", m.Epoch, "applied_version", applied)
		s.setWiped(false, v, applied, "")
		return false, true
	case v < applied:
		// Older data under the same identity: a Redis restored from an old
		// snapshot. Never go back in time.
		if s.marker != nil {
			if err := s.store.MarkWiped(ctx, *s.marker); err != nil {
				s.log.Error("marking the state store wiped", "err", err)
			}
		}
		s.setWiped(true, v, applied, "the state version went backwards")
		return true, false
	}
	if m != nil && s.marker != nil && m.ID != s.marker.ID {
		s.log.Warn("the state store has a new identity (a different or re-initialized Redis); taking its state",
			"store_id", m.ID, "previous_store_id", s.marker.ID, "version", v)
		return false, true
	}
	return false, false
}

// setWiped records the wiped state, saying so loudly when it changes.
func (s *Syncer) setWiped(wiped bool, v, applied uint64, why string) {
	if wiped == s.wiped {
		return
	}
	s.wiped = wiped
	if wiped {
		s.log.Error("THE STATE STORE LOST ITS DATA ("+why+"): this replica keeps serving its last good snapshot "+
			"and refuses to take the empty or older state; every admin change except `gateway apply` is refused. "+
			"Restore with `gateway apply -f <backup from gateway export --include-secrets>`; see docs/operations.md, failure modes.",
			"store_version", v, "applied_version", applied)
	} else {
		s.log.Warn("the state store is restored", "version", v)
	}
	if s.onWiped != nil {
		s.onWiped(wiped)
	}
}

// Ready reports whether a state has been applied.
func (s *Syncer) Ready() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ready
}

// Version returns the last applied version (0 before the first).
func (s *Syncer) Version() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.version
}

// WaitVersion blocks until a state of version v or later has been applied, or
// ctx ends.
func (s *Syncer) WaitVersion(ctx context.Context, v uint64) error {
	for {
		s.mu.Lock()
		done, ch := s.ready && s.version >= v, s.changed
		s.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("waiting for state version %d: %w", v, ctx.Err())
		}
	}
}
