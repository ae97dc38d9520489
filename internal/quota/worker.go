package quota

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bedrock-gateway/gateway/internal/bedrock"
)

// maxBackoff caps the retry interval after a failure that is not an outage
// (a script still missing after a reload). Outages are retried as soon as the
// probe sees Redis answer, not on a backoff.
const maxBackoff = time.Second

// work is the single worker goroutine: it writes queued settlements in
// pipelined batches, retries them while Redis is unreachable (they are
// idempotent), probes Redis while degraded, and on Close drains and spills.
func (l *Limiter) work() {
	defer close(l.done)
	backoff := 100 * time.Millisecond
	var batch []*settlement
	for {
		if len(batch) == 0 {
			if len(l.backlog) > 0 {
				n := min(len(l.backlog), l.opts.BatchSize)
				batch = append(batch, l.backlog[:n]...)
				l.backlog = l.backlog[n:]
			} else {
				// Degraded: probe until Redis answers. Healthy and idle:
				// check now and then, so an outage is noticed without traffic.
				interval := l.opts.HealthInterval
				if !l.healthy.Load() {
					interval = l.opts.ProbeInterval
				}
				probeC, stop := l.opts.Clock.After(interval)
				select {
				case s := <-l.queue:
					stop()
					batch = append(batch, s)
				case ctx := <-l.closeCh:
					stop()
					l.shutdown(ctx, nil)
					return
				case <-probeC:
					l.probe()
					continue
				case <-l.wake:
					stop()
					continue
				}
			}
			batch = l.fill(batch)
		}
		select {
		case ctx := <-l.closeCh:
			l.shutdown(ctx, batch)
			return
		default:
		}
		rest, err := l.writeBatch(context.Background(), batch)
		batch = rest
		if err == nil {
			backoff = 100 * time.Millisecond
			continue
		}
		if !l.healthy.Load() {
			// Redis is unreachable: retry the moment it answers again.
			if ctx, closing := l.awaitUp(); closing {
				l.shutdown(ctx, batch)
				return
			}
			continue
		}
		wait, stop := l.opts.Clock.After(backoff)
		select {
		case <-wait:
		case ctx := <-l.closeCh:
			stop()
			l.shutdown(ctx, batch)
			return
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// awaitUp waits, probing every ProbeInterval, until Redis answers the probe
// or any other call (a reserve, a refresh) finds it answering, or until Close.
func (l *Limiter) awaitUp() (context.Context, bool) {
	for !l.healthy.Load() {
		probeC, stop := l.opts.Clock.After(l.opts.ProbeInterval)
		select {
		case <-probeC:
			l.probe()
		case <-l.up:
		case ctx := <-l.closeCh:
			stop()
			return ctx, true
		}
		stop()
	}
	return nil, false
}

// fill tops batch up from the queue without waiting.
func (l *Limiter) fill(batch []*settlement) []*settlement {
	for len(batch) < l.opts.BatchSize {
		select {
		case s := <-l.queue:
			batch = append(batch, s)
		default:
			return batch
		}
	}
	return batch
}

func (l *Limiter) probe() {
	ctx, cancel := context.WithTimeout(context.Background(), l.opts.Timeout)
	defer cancel()
	if err := l.client.Ping(ctx).Err(); err != nil {
		// A healthy replica takes two missed pings in a row for an outage:
		// one slow answer on a starved CPU is not one. (Calls with traffic
		// mark it down at their first failure anyway.)
		l.healthMisses++
		if isUnreachable(err) && (!l.healthy.Load() || l.healthMisses >= 2) {
			l.markDown("probe", err)
		}
		return
	}
	l.healthMisses = 0
	if l.healthy.Load() {
		return
	}
	// A restarted server has an empty script cache; Run and the batch writer
	// recover from NOSCRIPT anyway, this only saves a round trip.
	_ = l.loadScripts(context.Background())
	l.markUp()
}

// writeBatch writes batch in one pipeline of EVALSHA calls. It returns the
// settlements still to write (in order, barriers included) with the outage
// error, or nil. Script errors are logged and the settlement dropped: a bug
// must not block the queue forever.
func (l *Limiter) writeBatch(ctx context.Context, batch []*settlement) ([]*settlement, error) {
	for attempt := 0; ; attempt++ {
		var rest []*settlement
		var outage error
		noScript := false
		cmds := make([]*redis.Cmd, len(batch))
		pipe := l.client.Pipeline()
		for i, s := range batch {
			if s.barrier == nil {
				keys, args := l.settleCall(s)
				cmds[i] = pipe.EvalSha(ctx, l.settle.Hash(), keys, args...)
			}
		}
		if pipe.Len() > 0 {
			cctx, cancel := context.WithTimeout(ctx, l.opts.Timeout)
			_, _ = pipe.Exec(cctx)
			cancel()
		}
		var settled []*settlement
		var passed []chan struct{} // barriers everything before which is written
		for i, s := range batch {
			if s.barrier != nil {
				if len(rest) > 0 {
					rest = append(rest, s)
				} else {
					passed = append(passed, s.barrier)
				}
				continue
			}
			err := l.handleSettled(s, cmds[i].Slice)
			switch {
			case err == nil:
				if v, _ := cmds[i].Slice(); len(v) > 0 && v[0] != int64(0) && s.eventful() {
					settled = append(settled, s) // written now, not a repeat
				}
			case isNoScript(err):
				noScript = true
				rest = append(rest, s)
			case isUnreachable(err):
				outage = err
				rest = append(rest, s)
			default:
				l.log.Error("quota settle script failed; settlement dropped", "entitlement", s.Entitlement,
					"id", s.ID, "kind", s.Kind, "err", err)
			}
		}
		l.emitUsageEvents(ctx, settled)
		for _, b := range passed {
			close(b) // after the events too, so Flush covers them
		}
		if outage != nil {
			l.markDown("settle batch", outage)
			return rest, outage
		}
		if len(rest) < len(batch) {
			l.markUp()
		}
		if !noScript {
			return nil, nil
		}
		if attempt > 0 {
			// Loaded and still missing: treat like an outage and retry later.
			return rest, fmt.Errorf("settle script missing after reload: %w", redis.ErrNoScript)
		}
		if err := l.loadScripts(ctx); err != nil {
			if isUnreachable(err) {
				l.markDown("loading scripts", err)
			}
			return rest, err
		}
		batch = rest
	}
}

// Flush writes everything queued or settled against a lease before it was
// called. While Redis is unreachable it waits (bounded by ctx).
func (l *Limiter) Flush(ctx context.Context) error {
	l.flushLeaseUsage()
	b := &settlement{barrier: make(chan struct{})}
	if _, err := l.enqueue(ctx, b, true); err != nil {
		return fmt.Errorf("flushing quota settlements: %w", err)
	}
	select {
	case <-b.barrier:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("flushing quota settlements: %w", ctx.Err())
	case <-l.done:
		return fmt.Errorf("flushing quota settlements: %w", ErrClosed)
	}
}

// Close stops accepting settlements, writes what is queued (bounded by ctx),
// spills the rest to SpillFile and stops the worker. It waits for the worker
// to exit; later calls return the first call's result.
func (l *Limiter) Close(ctx context.Context) error {
	l.closeOnce.Do(func() {
		// Leases first: their usage and returns go through the queue.
		l.closeLeases()
		close(l.stopping)
		l.closeMu.Lock()
		l.closed = true
		l.closeMu.Unlock()
		l.closeCh <- ctx
		<-l.done
		// Reservations are refreshed until their settlements are written.
		close(l.refreshStop)
	})
	<-l.done
	<-l.refreshDone
	return l.closeErr
}

// shutdown drains batch, the backlog and the queue (no sender can add to it
// any more) within ctx, then spills what is left.
func (l *Limiter) shutdown(ctx context.Context, batch []*settlement) {
	pending := append(batch, l.backlog...)
	l.backlog = nil
	for drained := false; !drained; {
		select {
		case s := <-l.queue:
			pending = append(pending, s)
		default:
			drained = true
		}
	}
	backoff := 50 * time.Millisecond
	for len(pending) > 0 && ctx.Err() == nil {
		n := min(len(pending), l.opts.BatchSize)
		rest, err := l.writeBatch(ctx, pending[:n])
		if err == nil {
			pending = pending[n:]
			continue
		}
		pending = append(rest, pending[n:]...)
		wait, stop := l.opts.Clock.After(backoff)
		select {
		case <-wait:
		case <-ctx.Done():
		}
		stop()
		backoff = min(2*backoff, maxBackoff)
	}
	left := pending[:0]
	for _, s := range pending {
		if s.barrier == nil {
			left = append(left, s)
		}
	}
	if len(left) == 0 {
		return
	}
	if l.opts.SpillFile == "" {
		l.closeErr = fmt.Errorf("closing quota limiter: %d settlements not written and no spill file", len(left))
		l.log.Error("quota settlements lost at shutdown", "count", len(left))
		return
	}
	if err := l.spill(left); err != nil {
		l.closeErr = fmt.Errorf("closing quota limiter: %w", err)
		l.log.Error("quota settlements lost at shutdown", "count", len(left), "err", err)
		return
	}
	l.log.Warn("quota settlements spilled for the next start", "count", len(left), "file", l.opts.SpillFile)
}

// spill appends items to the spill file, one JSON object a line.
func (l *Limiter) spill(items []*settlement) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	for _, s := range items {
		if err := enc.Encode(s); err != nil {
			return fmt.Errorf("encoding spilled settlement: %w", err)
		}
	}
	l.spillMu.Lock()
	defer l.spillMu.Unlock()
	f, err := os.OpenFile(l.opts.SpillFile, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("opening spill file: %w", err)
	}
	if _, err := f.Write(buf.Bytes()); err != nil {
		_ = f.Close()
		return fmt.Errorf("writing spill file: %w", err)
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return fmt.Errorf("syncing spill file: %w", err)
	}
	return f.Close()
}

// readSpill reads and removes the spill file. A missing file is no error.
func readSpill(path string) ([]*settlement, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	items, err := decodeSpill(data)
	if err != nil {
		return nil, err
	}
	if err := os.Remove(path); err != nil {
		return nil, err
	}
	return items, nil
}

// decodeSpill parses JSON lines of settlements; blank lines are skipped.
func decodeSpill(data []byte) ([]*settlement, error) {
	var items []*settlement
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 16*1024*1024)
	for line := 1; sc.Scan(); line++ {
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		s := new(settlement)
		if err := json.Unmarshal(b, s); err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		if err := s.validate(); err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		items = append(items, s)
	}
	return items, sc.Err()
}

func (s *settlement) validate() error {
	switch {
	case s.Kind != kindSettle && s.Kind != kindRelease && s.Kind != kindOrphan && s.Kind != kindLease:
		return fmt.Errorf("bad kind %q", s.Kind)
	case s.ID == "" || s.Entitlement == "" || s.Month == "":
		return errors.New("missing id, entitlement or month")
	case s.MonthEnd.IsZero():
		return errors.New("missing month_end")
	case s.Kind == kindLease && s.LeaseNext == "":
		return errors.New("lease settlement without its next generation")
	case s.Counted < 0 || s.Tokens < 0 || s.TPM < 0 || s.LeaseKeep < 0 || s.Requests < 0 || s.Errors < 0 || s.Estimated < 0 || s.RPM < 0 || s.SlotsBack < 0:
		return errors.New("negative count")
	}
	for _, c := range s.Caps {
		if c.Limit <= 0 {
			return errors.New("cap without limit")
		}
	}
	return nil
}

// emitUsageEvents appends one stream entry per newly written settlement (see
// Options.UsageStreamMaxLen), in one pipeline.
func (l *Limiter) emitUsageEvents(ctx context.Context, settled []*settlement) {
	if l.opts.UsageStreamMaxLen <= 0 || len(settled) == 0 {
		return
	}
	stream := l.opts.Prefix + ":usage-events"
	now := l.now().UnixMilli()
	pipe := l.client.Pipeline()
	for _, s := range settled {
		kind := "settle"
		switch s.Kind {
		case kindLease:
			// One event for the calls of one ledger line settled together;
			// "requests" and "errors" say how many.
			kind = "batch"
		case kindRelease:
			kind = "release"
		}
		pipe.XAdd(ctx, &redis.XAddArgs{Stream: stream, MaxLen: l.opts.UsageStreamMaxLen, Approx: true, Values: []any{
			"id", s.ID, "kind", kind, "time", now, "month", s.Month, "entitlement", s.Entitlement,
			"account", s.Account, "model", s.Model, "tier", cmp.Or(s.Tier, bedrock.TierDefault), "counted", s.Counted,
			"input_tokens", s.Usage.InputTokens, "output_tokens", s.Usage.OutputTokens,
			"cache_read_tokens", s.Usage.CacheReadTokens, "cache_write_tokens", s.Usage.CacheWriteTokens,
			"estimated", s.Usage.Estimated, "requests", s.Requests, "errors", s.Errors,
		}})
	}
	cctx, cancel := context.WithTimeout(ctx, l.opts.Timeout)
	defer cancel()
	if _, err := pipe.Exec(cctx); err != nil {
		l.log.Warn("writing usage events (the ledger has the usage)", "events", len(settled), "err", err)
	}
}
