package store

import (
	"context"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// pubsubHealthCheck is how often an idle subscription is pinged, so a dead
// connection is noticed and replaced even when no message would tell.
const pubsubHealthCheck = 2 * time.Second

// Watch calls onChange with the version when it differs from the last one
// delivered (and once at start), until ctx ends; it blocks until then. A pub/sub
// message makes it check at once; a poll every PollInterval covers messages lost
// while the subscription reconnects (which it does by itself). Calls are
// serialized, and changes that arrive during a slow call are coalesced into one
// follow-up call.
func (s *Store) Watch(ctx context.Context, onChange func(version uint64)) {
	s.watch(ctx, func(_ context.Context, v uint64) error {
		onChange(v)
		return nil
	})
}

// watch is Watch with a handler that may fail: the version then counts as not
// delivered, and the next poll or message tries again.
func (s *Store) watch(ctx context.Context, handle func(ctx context.Context, version uint64) error) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	kick := make(chan struct{}, 1)
	wg.Go(func() { s.subscribe(ctx, kick) })
	defer wg.Wait()
	defer cancel()

	ticker := time.NewTicker(s.poll)
	defer ticker.Stop()
	var (
		last      uint64
		delivered bool
		failing   bool
	)
	check := func() {
		v, err := s.Version(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if !failing {
				s.log.Warn("state version check failed; retrying", "err", err, "every", s.poll)
			}
			failing = true
			return
		}
		if failing {
			s.log.Info("state version check works again", "version", v)
			failing = false
		}
		if delivered && v == last {
			return
		}
		if handle(ctx, v) == nil {
			last, delivered = v, true
		}
	}
	check()
	for {
		select {
		case <-ctx.Done():
			return
		case <-kick:
		case <-ticker.C:
		}
		check()
	}
}

// subscribe turns every message on the change channel, and every
// (re)subscription, into a kick, until ctx ends. go-redis reconnects the
// subscription after errors; the resubscription kicks too, since messages may
// have been lost meanwhile.
func (s *Store) subscribe(ctx context.Context, kick chan<- struct{}) {
	ps := s.client.Subscribe(ctx, s.channel)
	defer func() {
		if err := ps.Close(); err != nil {
			s.log.Debug("closing change subscription", "err", err)
		}
	}()
	ch := ps.ChannelWithSubscriptions(redis.WithChannelHealthCheckInterval(pubsubHealthCheck))
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-ch:
			if !ok {
				return
			}
			select {
			case kick <- struct{}{}:
			default: // a check is already pending: coalesce
			}
		}
	}
}
