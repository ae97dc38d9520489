package store

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

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
}

// Syncer keeps a replica's view of the state current: on every version change it
// loads the state and hands it to Apply. When loading fails it keeps the last
// good snapshot, logs, and tries again at the next poll.
type Syncer struct {
	store *Store
	apply func(*state.State, uint64) error
	log   *slog.Logger

	failing bool // only touched by sync, which Watch serializes

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
	return &Syncer{store: opts.Store, apply: opts.Apply, log: log, changed: make(chan struct{})}
}

// Run keeps the view current until ctx ends.
func (s *Syncer) Run(ctx context.Context) {
	s.store.watch(ctx, s.sync)
}

// sync loads and applies the state; an error means "try again later".
func (s *Syncer) sync(ctx context.Context, _ uint64) error {
	st, v, err := s.store.Load(ctx)
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
	current := s.ready && s.version == v
	s.mu.Unlock()
	if current {
		return nil
	}
	if err := s.apply(st, v); err != nil {
		// The same version would fail the same way: wait for the next one.
		s.log.Error("applying state; serving the last good snapshot", "err", err, "version", v, "applied_version", s.Version())
		return nil
	}
	s.mu.Lock()
	s.ready, s.version = true, v
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
	s.log.Debug("state applied", "version", v)
	return nil
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
