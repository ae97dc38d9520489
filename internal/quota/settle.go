package quota

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/bedrock-gateway/gateway/internal/bedrock"
)

const (
	kindSettle  = "s"
	kindRelease = "r"
	// kindOrphan releases a reservation whose reserve timed out on the replica
	// (the script may have run anyway): no ledger entry, see releaseOrphan.
	kindOrphan = "o"
	// kindLease settles a batch of calls admitted against a lease (one
	// ledger line of them) and keeps or returns the lease: see lease.go.
	kindLease = "l"
)

// settlement is one queued Settle or Release; it is self-contained (it is
// what the spill file holds, one JSON object a line).
type settlement struct {
	Kind        string        `json:"kind"`
	ID          string        `json:"id"`
	Entitlement string        `json:"entitlement"`
	Account     string        `json:"account"`
	Team        string        `json:"team,omitempty"`      // the account's team at call time; empty = not recorded
	Principal   string        `json:"principal,omitempty"` // the caller's IAM principal; empty for gateway credentials
	Model       string        `json:"model"`
	Tier        string        `json:"tier,omitempty"`    // pricing tier; empty = default
	Profile     string        `json:"profile,omitempty"` // application inference profile ARN; empty = the model
	Month       string        `json:"month"`
	MonthEnd    time.Time     `json:"month_end"`
	Caps        []Cap         `json:"caps,omitempty"`
	Counted     int64         `json:"counted"`
	Usage       bedrock.Usage `json:"usage"`
	Tokens      int64         `json:"tokens"`        // reserved estimate
	TPM         int64         `json:"tpm,omitempty"` // tokens per minute limit to refund against; 0 = none
	// Held is set when the reservation was made in Redis (not a fail-open
	// admission), so one missing at settlement had expired.
	Held bool `json:"held,omitempty"`
	// For kindLease: the lease's next generation ID, the tokens it keeps
	// (0: returned) and what the ledger line counts.
	LeaseNext string `json:"lease_next,omitempty"`
	LeaseKeep int64  `json:"lease_keep,omitempty"`
	Requests  int64  `json:"requests,omitempty"`
	Errors    int64  `json:"errors,omitempty"`
	Estimated int64  `json:"estimated,omitempty"`
	// For a returned lease's last kindLease settlement: the request slots it
	// took from the RPM limit and never used, given back to the limit.
	RPM       int64 `json:"rpm,omitempty"`
	SlotsBack int64 `json:"slots_back,omitempty"`

	lease *lease // the lease a kindLease settlement belongs to (nil once spilled)

	barrier chan struct{} // Flush marker: closed once everything before it is written
}

// Settle replaces the reservation with the exact usage: counted is the usage
// per the entitlement's count rule (charged to every cap) and usage goes to the
// ledger. It is idempotent per reservation ID. The write is queued and done
// in a batch; when the queue is full it is done before Settle returns.
func (l *Limiter) Settle(ctx context.Context, r *Reservation, counted int64, usage bedrock.Usage) error {
	if r == nil {
		return errors.New("settling quota: nil reservation")
	}
	if counted < 0 {
		return errors.New("settling quota: negative usage")
	}
	if err := l.finish(ctx, r, l.newSettlement(r, kindSettle, counted, usage)); err != nil {
		return fmt.Errorf("settling quota: %w", err)
	}
	return nil
}

// Release cancels a reservation without charge (the upstream call failed) and
// counts one error in the ledger. It is idempotent per reservation ID.
func (l *Limiter) Release(ctx context.Context, r *Reservation) error {
	if r == nil {
		return errors.New("releasing quota: nil reservation")
	}
	if err := l.finish(ctx, r, l.newSettlement(r, kindRelease, 0, bedrock.Usage{})); err != nil {
		return fmt.Errorf("releasing quota: %w", err)
	}
	return nil
}

func (l *Limiter) finish(ctx context.Context, r *Reservation, s *settlement) error {
	if !r.done.CompareAndSwap(false, true) {
		return nil // already handed on; the script would ignore it anyway
	}
	if r.lease != nil {
		// Accumulated locally, written with the lease's next batch.
		return l.leaseDone(ctx, r, s)
	}
	if err := l.submit(ctx, s); err != nil {
		r.done.Store(false) // let the caller retry
		return err
	}
	if r.Degraded {
		l.inflightDegraded.Add(-1)
	}
	return nil
}

func (l *Limiter) newSettlement(r *Reservation, kind string, counted int64, usage bedrock.Usage) *settlement {
	tier := r.req.Tier
	if tier == bedrock.TierDefault {
		tier = "" // the default tier's ledger fields carry no tier
	}
	return &settlement{
		Kind: kind, ID: r.ID, Entitlement: r.req.Entitlement, Account: r.req.Account, Team: r.req.Team, Principal: r.req.Principal, Model: r.req.Model, Tier: tier, Profile: r.req.Profile,
		Month: r.Month, MonthEnd: r.monthEnd, Caps: r.req.Caps, Counted: counted, Usage: usage,
		Tokens: r.Tokens, TPM: r.req.TokensPerMinute, Held: !r.Degraded,
	}
}

// submit queues s, or writes it now when the queue is full; it never drops it.
func (l *Limiter) submit(ctx context.Context, s *settlement) error {
	ok, err := l.enqueue(ctx, s, false)
	if errors.Is(err, ErrClosed) {
		return l.submitClosed(ctx, s)
	}
	if ok || err != nil {
		return err
	}
	err = l.writeOne(ctx, s)
	if err == nil || !isUnreachable(err) || ctx.Err() != nil {
		return err
	}
	// Redis is down and the queue is full: wait for room.
	ok, err = l.enqueue(ctx, s, true)
	if ok {
		return nil
	}
	if errors.Is(err, ErrClosed) {
		return l.submitClosed(ctx, s)
	}
	return err
}

// submitClosed handles a settlement that arrives after Close (a call cut at
// the shutdown deadline that finished late): written now when Redis answers,
// else spilled, else logged with its figures, never dropped silently.
func (l *Limiter) submitClosed(ctx context.Context, s *settlement) error {
	err := l.writeOne(ctx, s)
	if err == nil {
		return nil
	}
	if l.opts.SpillFile != "" {
		if serr := l.spill([]*settlement{s}); serr == nil {
			l.log.Warn("quota settlement after shutdown spilled", "entitlement", s.Entitlement, "id", s.ID, "spill_file", l.opts.SpillFile)
			return nil
		} else {
			err = errors.Join(err, serr)
		}
	}
	l.log.Error("quota settlement after shutdown lost: Redis unreachable and no --spill-file",
		"entitlement", s.Entitlement, "account", s.Account, "model", s.Model, "id", s.ID, "kind", s.Kind,
		"counted_tokens", s.Counted, "input_tokens", s.Usage.InputTokens, "output_tokens", s.Usage.OutputTokens, "error", err)
	return fmt.Errorf("%w: %w", ErrClosed, err)
}

// enqueue puts s on the queue, waiting for room (bounded by ctx) when wait is set.
func (l *Limiter) enqueue(ctx context.Context, s *settlement, wait bool) (bool, error) {
	l.closeMu.RLock()
	defer l.closeMu.RUnlock()
	if l.closed {
		return false, ErrClosed
	}
	if !wait {
		select {
		case l.queue <- s:
			return true, nil
		default:
			return false, nil
		}
	}
	select {
	case l.queue <- s:
		return true, nil
	case <-l.stopping:
		return false, ErrClosed
	case <-ctx.Done():
		return false, ctx.Err()
	}
}

// kindFlags is the settle script's kind argument: the kind, then 'e' when the
// usage was estimated and 'x' when the call failed mid-stream.
func (s *settlement) kindFlags() string {
	k := s.Kind
	if s.Kind == kindSettle && s.Usage.Estimated {
		k += "e"
	}
	if s.Kind == kindSettle && s.Usage.Failed {
		k += "x"
	}
	return k
}

// settleCall builds the keys and arguments of the settle script for s.
func (l *Limiter) settleCall(s *settlement) ([]string, []any) {
	k := l.keysFor(s.Entitlement)
	var days []day
	if m, ok := parseMonth(s.Month, l.opts.Location); ok && s.Kind != kindOrphan {
		days = dayCandidates(l.now(), m, l.opts.Location)
	}
	keys := make([]string, 0, 4+2*len(s.Caps)+len(days))
	keys = append(keys, k.settled(s.ID), k.ledger(s.Month), k.alerts(s.Month), k.tpm(s.Account))
	for _, c := range s.Caps {
		keys = append(keys, k.capHash(s.Month, c), k.capZset(s.Month, c))
	}
	for _, d := range days {
		keys = append(keys, k.ledgerDay(d.key))
	}
	held := 0
	if s.Held {
		held = 1
	}
	args := make([]any, 0, 16+4*len(s.Caps))
	args = append(args, l.timeOffsetMs(), s.ID, s.kindFlags(), s.Counted, ledgerKey{Account: s.Account, Team: s.Team, Principal: s.Principal, Model: ledgerModel(s.Model, s.Profile), Tier: s.Tier}.prefix(),
		s.Usage.InputTokens, s.Usage.OutputTokens, s.Usage.CacheReadTokens, s.Usage.CacheWriteTokens,
		s.MonthEnd.Add(ledgerRetention).UnixMilli(), s.MonthEnd.Add(l.opts.Grace).UnixMilli(),
		(2 * l.opts.ReservationTTL).Milliseconds(), s.TPM, s.Tokens, len(s.Caps), held)
	for _, c := range s.Caps {
		args = append(args, c.Limit, string(c.Level)+":"+c.Target, len(c.Thresholds))
		for _, t := range c.Thresholds {
			args = append(args, t)
		}
	}
	args = append(args, len(days))
	for _, d := range days {
		args = append(args, d.start.UnixMilli())
	}
	if s.Kind == kindLease {
		args = append(args, s.LeaseNext, s.LeaseKeep, s.Requests, s.Errors, s.Estimated)
		if s.SlotsBack > 0 && s.RPM > 0 {
			args = append(args, s.RPM, s.SlotsBack)
			keys = append(keys, k.rpm(s.Account))
		}
	}
	return keys, args
}

// writeOne runs the settle script for s now (EVALSHA, falling back to EVAL).
func (l *Limiter) writeOne(ctx context.Context, s *settlement) error {
	keys, args := l.settleCall(s)
	cctx, cancel := context.WithTimeout(ctx, l.opts.Timeout)
	defer cancel()
	cmd := l.settle.Run(cctx, l.client, keys, args...)
	err := l.handleSettled(s, cmd.Slice)
	switch {
	case err == nil:
		l.markUp()
		// The same usage event the batch path writes (written now, not a repeat).
		if v, _ := cmd.Slice(); len(v) > 0 && v[0] != int64(0) && s.eventful() {
			l.emitUsageEvents(ctx, []*settlement{s})
		}
	case isUnreachable(err) && ctx.Err() == nil:
		l.markDown("settle", err)
	case ctx.Err() == nil:
		l.log.Error("quota settle script failed", "entitlement", s.Entitlement, "id", s.ID, "err", err)
	}
	return err
}

// handleSettled reads a settle script reply and reports the alerts it
// claimed and a reservation found expired. The settlement is written (or
// dropped as a bug) when it returns no outage error, so the refresher lets go
// of its reservation.
func (l *Limiter) handleSettled(s *settlement, result func() ([]any, error)) error {
	vals, err := result()
	if err != nil {
		if !isUnreachable(err) && !isNoScript(err) {
			l.untrack(s.ID)
		}
		return err
	}
	l.untrack(s.ID)
	if len(vals) == 0 {
		return fmt.Errorf("%w: empty settle reply", errBadResult)
	}
	firstLoss := true // a lease Redis lost is reported once, not with each batch after
	if s.Kind == kindLease {
		status, _ := vals[0].(int64)
		firstLoss = l.leaseWritten(s, status)
	}
	if (len(vals)-1)%3 != 0 {
		return fmt.Errorf("%w: settle returned %v", errBadResult, vals)
	}
	switch status, _ := vals[0].(int64); {
	case s.Kind == kindOrphan && status == 1:
		l.log.Warn("released a reservation left by a reserve that timed out", "entitlement", s.Entitlement,
			"id", s.ID, "tokens", s.Tokens, "month", s.Month)
	case status == 2 && firstLoss:
		// The cap did not hold these tokens for the whole call: other
		// requests may have been admitted against them.
		l.log.Warn("quota reservation had expired before its call settled; usage charged anyway",
			"entitlement", s.Entitlement, "id", s.ID, "kind", s.Kind, "reserved", s.Tokens, "counted", s.Counted)
		if l.opts.OnReservationExpired != nil {
			l.opts.OnReservationExpired(s.Entitlement)
		}
	}
	for i := 1; i+2 < len(vals); i += 3 {
		c, ok1 := vals[i].(int64)
		thr, ok2 := vals[i+1].(int64)
		used, ok3 := vals[i+2].(int64)
		if !ok1 || !ok2 || !ok3 || c < 1 || int(c) > len(s.Caps) {
			return fmt.Errorf("%w: settle returned %v", errBadResult, vals)
		}
		cp := s.Caps[c-1]
		a := Alert{Entitlement: s.Entitlement, Level: cp.Level, Target: cp.Target, Threshold: int(thr),
			Used: used, Limit: cp.Limit, Month: s.Month}
		l.log.Info("quota budget threshold crossed", "entitlement", a.Entitlement, "level", string(a.Level),
			"target", a.Target, "threshold", a.Threshold, "used", a.Used, "limit", a.Limit, "month", a.Month)
		if l.opts.OnAlert != nil {
			l.opts.OnAlert(a)
		}
	}
	return nil
}

// eventful tells whether a written settlement goes to the usage stream: not
// an orphan release, nor a lease's return without calls.
func (s *settlement) eventful() bool {
	switch s.Kind {
	case kindOrphan:
		return false
	case kindLease:
		return s.Requests+s.Errors > 0
	}
	return true
}
