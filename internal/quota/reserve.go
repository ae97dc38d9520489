package quota

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// monthMissError means Redis time fell in none of the candidate months: the
// replica's clock is far off. It carries the Redis time to retry with.
type monthMissError struct{ now time.Time }

func (e *monthMissError) Error() string {
	return "no candidate month holds Redis time " + e.now.String()
}

// Reserve admits req against its caps and rate limits in one round trip, or
// refuses it with *CapExceededError, *RateLimitedError or (wrapped)
// ErrStoreUnavailable. Any other error is a failure to decide (a script bug,
// a cancelled ctx) and the request must not be admitted.
func (l *Limiter) Reserve(ctx context.Context, req Request) (*Reservation, error) {
	if req.Entitlement == "" || strings.ContainsAny(req.Entitlement, "{}") {
		return nil, fmt.Errorf("reserving quota: bad entitlement name %q", req.Entitlement)
	}
	if req.Tokens < 0 {
		return nil, errors.New("reserving quota: negative token estimate")
	}
	req.Caps = effectiveCaps(req.Caps)
	if l.leases != nil && l.healthy.Load() && !l.wiped.Load() {
		if r, ok := l.reserveLeased(ctx, req); ok {
			return r, nil
		}
		l.leases.perRequest.Add(1)
	}
	id, err := newID()
	if err != nil {
		return nil, fmt.Errorf("reserving quota: %w", err)
	}
	if !l.healthy.Load() || l.wiped.Load() {
		// The worker probes Redis while degraded; requests do not wait on it.
		return l.admitDegraded(req, id)
	}
	cands := candidates(l.now(), l.opts.Location)
	r, err := l.reserveOnce(ctx, req, id, cands)
	var miss *monthMissError
	if errors.As(err, &miss) {
		l.log.Warn("replica clock far from Redis time", "redis_time", miss.now, "local_time", l.now())
		cands = candidates(miss.now, l.opts.Location)
		r, err = l.reserveOnce(ctx, req, id, cands)
	}
	var capErr *CapExceededError
	var rateErr *RateLimitedError
	switch {
	case err == nil:
		l.track(r)
		l.markUp()
		return r, nil
	case errors.As(err, &capErr), errors.As(err, &rateErr):
		l.markUp()
		return nil, err
	case ctx.Err() != nil:
		if mayHaveRun(err) {
			// The caller left before the reply, not necessarily before the script ran.
			l.releaseOrphan(req, id, cands)
		}
		return nil, fmt.Errorf("reserving quota: %w", ctx.Err())
	case isUnreachable(err):
		if mayHaveRun(err) {
			// A timeout does not say the script did not run: it may run later,
			// when Redis catches up, and hold tokens nobody settles.
			l.releaseOrphan(req, id, cands)
			// A fresh ID: the queued release marks this one released for good.
			if id, err = newID(); err != nil {
				return nil, fmt.Errorf("reserving quota: %w", err)
			}
		}
		l.markDown("reserve", err)
		return l.admitDegraded(req, id)
	default:
		l.log.Error("quota reserve script failed", "entitlement", req.Entitlement, "err", err)
		return nil, fmt.Errorf("reserving quota: %w", err)
	}
}

func (l *Limiter) reserveOnce(ctx context.Context, req Request, id string, cands []month) (*Reservation, error) {
	return l.reserveScript(ctx, req, id, cands, nil)
}

// reserveScript runs the reserve script; with lease set it asks for a lease
// (see lease.go) of req.Tokens at most.
func (l *Limiter) reserveScript(ctx context.Context, req Request, id string, cands []month, lease *leaseAsk) (*Reservation, error) {
	k := l.keysFor(req.Entitlement)
	nc := len(req.Caps)
	keys := make([]string, 0, 3+2*nc*len(cands))
	keys = append(keys, k.rpm(req.Account), k.tpm(req.Account))
	for _, m := range cands {
		for _, c := range req.Caps {
			keys = append(keys, k.capHash(m.key, c), k.capZset(m.key, c))
		}
	}
	keys = append(keys, k.settled(id))
	args := make([]any, 0, 9+3*len(cands)+nc)
	args = append(args, l.timeOffsetMs(), id, req.Tokens, req.RequestsPerMinute, req.TokensPerMinute,
		l.opts.ReservationTTL.Milliseconds(), l.opts.Grace.Milliseconds(), len(cands), nc)
	for _, m := range cands {
		args = append(args, m.key, m.start.UnixMilli(), m.end.UnixMilli())
	}
	for _, c := range req.Caps {
		args = append(args, c.Limit)
	}
	if lease != nil {
		args = append(args, lease.div, lease.min, lease.requests)
	}
	cctx, cancel := context.WithTimeout(ctx, l.opts.Timeout)
	defer cancel()
	cmd := l.reserve.Run(cctx, l.client, keys, args...)
	if err := cmd.Err(); err != nil {
		return nil, err
	}
	vals, err := cmd.Int64Slice()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errBadResult, err)
	}
	if len(vals) < 2 {
		return nil, fmt.Errorf("%w: reserve returned %v", errBadResult, vals)
	}
	pick := func(i int64) (month, error) {
		if i < 1 || int(i) > len(cands) {
			return month{}, fmt.Errorf("%w: month index %d", errBadResult, i)
		}
		return cands[i-1], nil
	}
	switch vals[0] {
	case 0: // admitted
		if len(vals) != 5+nc {
			return nil, fmt.Errorf("%w: reserve returned %v", errBadResult, vals)
		}
		m, err := pick(vals[1])
		if err != nil {
			return nil, err
		}
		l.noteRedisTime(vals[3])
		return &Reservation{ID: id, Month: m.key, Tokens: vals[4+nc], Remaining: vals[2], redisNow: vals[3],
			ResetAt: m.end, req: req, monthEnd: m.end, left: vals[4 : 4+nc]}, nil
	case 1: // a cap is spent
		if len(vals) != 6 || vals[1] < 1 || int(vals[1]) > nc {
			return nil, fmt.Errorf("%w: reserve returned %v", errBadResult, vals)
		}
		m, err := pick(vals[5])
		if err != nil {
			return nil, err
		}
		c := req.Caps[vals[1]-1]
		return nil, &CapExceededError{Entitlement: req.Entitlement, Level: c.Level, Target: c.Target,
			Used: vals[2], Reserved: vals[3], Limit: vals[4], Requested: req.Tokens, ResetAt: m.end}
	case 2: // rate limited
		if len(vals) != 3 {
			return nil, fmt.Errorf("%w: reserve returned %v", errBadResult, vals)
		}
		which := LimitRequestsPerMinute
		if vals[1] == 2 {
			which = LimitTokensPerMinute
		}
		return nil, &RateLimitedError{Limit: which, RetryAfter: time.Duration(vals[2]) * time.Millisecond}
	case 3: // the local clock is far off
		return nil, &monthMissError{now: time.UnixMilli(vals[1])}
	case 4: // released before it ran: only a late script gets here
		return nil, errors.New("reservation released before it was made")
	case 5: // too little left for a lease
		if len(vals) != 3 {
			return nil, fmt.Errorf("%w: reserve returned %v", errBadResult, vals)
		}
		return nil, &leaseTooSmallError{left: vals[1]}
	}
	return nil, fmt.Errorf("%w: reserve returned %v", errBadResult, vals)
}

// mayHaveRun tells whether a failed call may still have reached Redis: false
// when it was never sent (no connection could be made or taken from the
// pool, the client was closed) or Redis refused it with a reply.
func mayHaveRun(err error) bool {
	var opErr *net.OpError
	var rerr redis.Error
	switch {
	case errors.As(err, &opErr) && opErr.Op == "dial",
		errors.Is(err, redis.ErrPoolTimeout), errors.Is(err, redis.ErrClosed),
		errors.As(err, &rerr):
		return false
	}
	return true
}

// releaseOrphan queues the idempotent release of a reservation whose reserve
// script may or may not have run (a timeout, a caller gone mid-call): it is
// written once Redis answers, removes the reservation if present in any
// candidate month, and marks the ID released so a script still on its way
// reserves nothing. No ledger entry: the request never ran.
func (l *Limiter) releaseOrphan(req Request, id string, cands []month) {
	if len(req.Caps) == 0 {
		return // nothing would be held
	}
	for _, m := range cands {
		s := &settlement{Kind: kindOrphan, ID: id, Entitlement: req.Entitlement, Account: req.Account,
			Model: req.Model, Month: m.key, MonthEnd: m.end, Caps: req.Caps, Tokens: req.Tokens,
			TPM: req.TokensPerMinute}
		// Never wait on the request path: unreleased, it still expires after the TTL.
		if ok, err := l.enqueue(context.Background(), s, false); !ok {
			l.log.Warn("could not queue the release of a reservation whose reserve timed out; it expires after the reservation TTL",
				"entitlement", req.Entitlement, "id", id, "err", err)
			return
		}
	}
}

// admitDegraded decides a request while Redis is unreachable.
func (l *Limiter) admitDegraded(req Request, id string) (*Reservation, error) {
	if !req.FailOpen {
		return nil, fmt.Errorf("reserving quota: %w", ErrStoreUnavailable)
	}
	// Every fail-open admission needs a queue slot for its usage later; refuse
	// rather than lose ledger rows.
	if l.inflightDegraded.Load()+int64(len(l.queue)) >= int64(cap(l.queue)) {
		return nil, fmt.Errorf("reserving quota: settlement queue full: %w", ErrStoreUnavailable)
	}
	if !l.local.AllowN(l.now(), 1) {
		return nil, fmt.Errorf("reserving quota: local fail-open limit reached: %w", ErrStoreUnavailable)
	}
	l.inflightDegraded.Add(1)
	m := monthOf(l.now(), l.opts.Location)
	req.TokensPerMinute = 0 // nothing was taken from the rate limiter, so nothing to give back
	return &Reservation{ID: id, Month: m.key, Tokens: req.Tokens, Remaining: -1, ResetAt: m.end,
		Degraded: true, req: req, monthEnd: m.end}, nil
}

// effectiveCaps drops caps without a limit, duplicates (a cap listed twice
// would be reserved twice in the same hash) and thresholds that are not positive.
func effectiveCaps(caps []Cap) []Cap {
	out := make([]Cap, 0, len(caps))
	for _, c := range caps {
		if c.Limit <= 0 {
			continue
		}
		if slices.ContainsFunc(c.Thresholds, func(t int) bool { return t <= 0 }) {
			c.Thresholds = slices.DeleteFunc(slices.Clone(c.Thresholds), func(t int) bool { return t <= 0 })
		}
		dup := false
		for _, o := range out {
			if o.Level == c.Level && o.Target == c.Target {
				dup = true
				break
			}
		}
		if !dup {
			out = append(out, c)
		}
	}
	return out
}

func newID() (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:]), nil
}
