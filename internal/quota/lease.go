package quota

import (
	"context"
	"errors"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bedrock-gateway/gateway/internal/bedrock"
)

// ReplicaCounter says how many replicas share the store (heartbeats), for
// lease sizing; it must not call Redis.
type ReplicaCounter interface {
	ReplicaCount() int
}

// LeaseOptions configure quota leases (see "Leases" in doc.go). Zero values
// take the documented defaults.
type LeaseOptions struct {
	// Enabled admits requests against leases; off, every request reserves
	// in Redis on its own (one round trip to reserve, one to settle).
	Enabled bool
	// Window sizes a lease: this much of the replica's recent traffic on
	// the lease's caps; default 1s (shorter windows take leases more often
	// at moderate rates per key, each a round trip on the request path).
	Window time.Duration
	// K: a lease never takes more than what is left of its tightest cap
	// divided by K times the live replicas; default 4.
	K int
	// MinRequests: a lease holds at least this many requests like the one
	// that asks for it, or the request reserves on its own; default 4.
	MinRequests int64
	// Replicas counts the live replicas; nil counts 1.
	Replicas ReplicaCounter
	// FlushInterval bounds how long settled usage waits before it is
	// written (and how often idle and expired leases are looked at);
	// default 500ms. It also bounds the usage a killed replica never
	// writes (its lease expires uncharged for it).
	FlushInterval time.Duration
	// FlushSize writes a lease's usage once this many calls settled against
	// it, without waiting for FlushInterval; default 256.
	FlushSize int
	// IdleTimeout returns a lease nothing was admitted against for this
	// long; default 1s.
	IdleTimeout time.Duration
	// MaxAge is how long after it was asked for a lease admits requests (its
	// local deadline); never more than ReservationTTL/3, so a replica that
	// loses Redis stops spending a lease long before Redis frees it. Default
	// min(10s, ReservationTTL/3).
	MaxAge time.Duration
}

// LeaseStats count what the lease machinery did since the limiter started.
type LeaseStats struct {
	Acquired   int64 // leases taken (one round trip each)
	Ahead      int64 // of those, taken in the background before the current one ran out
	Returned   int64 // leases given back (their last settlement queued)
	Admitted   int64 // requests admitted against a lease, without a round trip
	PerRequest int64 // requests that reserved on their own although leases are on
}

// leaseAsk is what the reserve script needs for a lease.
type leaseAsk struct {
	div, min, requests int64
}

// leaseTooSmallError is the reserve script's answer when what is left of a
// cap divided among the replicas is less than the smallest useful lease.
type leaseTooSmallError struct{ left int64 }

func (e *leaseTooSmallError) Error() string {
	return "too little left for a lease: " + strconv.FormatInt(e.left, 10)
}

// leaseSizing is the input of one lease's size.
type leaseSizing struct {
	RateTokens, RateRequests float64 // this replica's recent demand on the caps, per second
	Window                   time.Duration
	Estimate                 int64 // the request asking
	MinRequests              int64
	K, Replicas              int
	RPM, TPM                 int64
}

// size returns the tokens to ask for, the least acceptable (both per the
// script: it lowers tokens to left/div, or refuses below min), the request
// slots (RPM) to take and whether a lease is worth asking for at all.
func (z leaseSizing) size() (tokens int64, ask leaseAsk, ok bool) {
	div := int64(max(1, z.K) * max(1, z.Replicas))
	minTokens := max(1, z.Estimate*max(1, z.MinRequests))
	want := int64(math.Ceil(z.RateTokens * z.Window.Seconds()))
	tokens = max(minTokens, want)
	if z.TPM > 0 {
		// The per-minute limit is shared the same way as what is left of a cap.
		tokens = min(tokens, z.TPM/div)
	}
	if tokens < minTokens {
		return 0, leaseAsk{}, false
	}
	requests := int64(1)
	if z.RPM > 0 {
		requests = max(max(1, z.MinRequests), int64(math.Ceil(z.RateRequests*z.Window.Seconds())))
		requests = min(requests, z.RPM/div)
		if requests < 1 {
			return 0, leaseAsk{}, false
		}
	}
	return tokens, leaseAsk{div: div, min: minTokens, requests: requests}, true
}

// leasePool holds this replica's leases by key (leaseKey).
type leasePool struct {
	mu     sync.RWMutex // guards slots
	slots  map[string]*leaseSlot
	closed atomic.Bool
	stop   chan struct{}
	done   chan struct{}

	// Leases being taken ahead, in the background; Close waits for them.
	bgMu     sync.Mutex // orders bg.Add against bgClosed and bg.Wait
	bgClosed bool
	bg       sync.WaitGroup

	acquired, ahead, returned, admitted, perRequest atomic.Int64
}

// leaseSlot is one key's leases: the current one, which admits, and retired
// ones still waiting for their calls to settle.
type leaseSlot struct {
	acq sync.Mutex // held while a lease is asked for: one round trip at a time per key
	mu  sync.Mutex // guards everything below and the leases' fields

	entitlement string
	cur         *lease
	next        *lease    // taken ahead while cur still admits; admits once cur cannot
	ahead       bool      // a lease is being taken ahead (takeAhead)
	aheadAfter  time.Time // no lease is taken ahead before this: the last attempt got none
	epoch       int       // DropLeases calls: a lease asked for before the last one is not installed
	retiring    []*lease
	dead        bool // removed from the pool; ask again

	// Demand since the last lease was asked for, and the rates it gave.
	demandTokens, demandRequests int64
	since                        time.Time
	rateTokens, rateRequests     float64
	noLeaseUntil                 time.Time
	lastUse                      time.Time
}

// lease is tokens (and, with an RPM limit, requests) reserved in Redis under
// one reservation, spent locally.
type lease struct {
	slot *leaseSlot
	lid  string
	gen  int     // the generation Redis holds ("<lid>.<gen>")
	req  Request // the template: entitlement, account, caps, rate limits
	m    month

	redisTokens    int64         // held in Redis once the queued settlements are written
	granted        int64         // tokens Redis granted it
	grantedSlots   int64         // request slots Redis granted it (RPM); 0: no RPM limit
	monthLeft      time.Duration // from its grant, by Redis time, to the end of its month
	epoch          int           // the slot's epoch when it was asked for
	scarce         bool          // granted less than asked: the cap nears its end, give back promptly
	inflightTokens int64         // estimates of admitted calls not settled yet
	pendingCounted int64         // settled usage not queued yet
	unlimited      bool          // no cap and no TPM: tokens are not counted
	slots          int64         // requests left to admit (RPM); -1: no RPM limit
	inflight       int
	seq            int
	pending        map[leaseLineKey]*leaseLine
	npending       int
	deadline       time.Time // local: admits before this only
	lastUse        time.Time
	lefts          []int64 // per cap: limit-used-reserved after the lease was taken
	retired        bool
	returned       bool        // its final settlement is queued: later usage settles on its own
	broken         atomic.Bool // Redis no longer holds it
}

// leaseLine is the usage of one ledger line (account, team, model, tier)
// settled against a lease and not yet written.
// leaseLineKey is what a ledger line is counted under: its batches write
// the same ledger fields one settlement per call would.
type leaseLineKey struct {
	account, team, principal, model, tier, profile string
}

type leaseLine struct {
	leaseLineKey
	counted                     int64
	usage                       bedrock.Usage
	requests, errors, estimated int64
}

func (ls *lease) avail() int64 {
	return ls.redisTokens - ls.inflightTokens - ls.pendingCounted
}

func genID(lid string, gen int) string { return lid + "." + strconv.Itoa(gen) }

// leaseKey identifies the leases a request may draw from: the same caps with
// the same limits (a changed limit is another key) and, with a rate limit,
// the same account (rate limits are per account).
func leaseKey(req *Request) string {
	var b strings.Builder
	b.Grow(64)
	b.WriteString(req.Entitlement)
	b.WriteByte('|')
	if req.RequestsPerMinute > 0 || req.TokensPerMinute > 0 {
		b.WriteString(req.Account)
		b.WriteByte('|')
		b.WriteString(strconv.FormatInt(req.RequestsPerMinute, 10))
		b.WriteByte('|')
		b.WriteString(strconv.FormatInt(req.TokensPerMinute, 10))
	}
	for _, c := range req.Caps {
		b.WriteByte('|')
		b.WriteString(string(c.Level))
		b.WriteByte(':')
		b.WriteString(c.Target)
		b.WriteByte('=')
		b.WriteString(strconv.FormatInt(c.Limit, 10))
	}
	return b.String()
}

func (o *LeaseOptions) defaults(ttl time.Duration) {
	if o.Window <= 0 {
		o.Window = time.Second
	}
	if o.K <= 0 {
		o.K = 4
	}
	if o.MinRequests <= 0 {
		o.MinRequests = 4
	}
	if o.FlushInterval <= 0 {
		o.FlushInterval = 500 * time.Millisecond
	}
	if o.FlushSize <= 0 {
		o.FlushSize = 256
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = time.Second
	}
	if o.MaxAge <= 0 {
		o.MaxAge = 10 * time.Second
	}
	o.MaxAge = min(o.MaxAge, ttl/3)
}

// LeaseStats reports what the leases did so far.
func (l *Limiter) LeaseStats() LeaseStats {
	p := l.leases
	if p == nil {
		return LeaseStats{}
	}
	return LeaseStats{Acquired: p.acquired.Load(), Ahead: p.ahead.Load(), Returned: p.returned.Load(),
		Admitted: p.admitted.Load(), PerRequest: p.perRequest.Load()}
}

func (p *leasePool) slot(key, entitlement string) *leaseSlot {
	p.mu.RLock()
	s := p.slots[key]
	p.mu.RUnlock()
	if s != nil {
		return s
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	s = p.slots[key]
	if s == nil {
		s = &leaseSlot{entitlement: entitlement}
		p.slots[key] = s
	}
	return s
}

// reserveLeased admits req against a lease, taking one when needed. handled
// is false when the request should reserve on its own (no lease possible
// now: near the end of a cap or of the month, a rate limit, a failure).
func (l *Limiter) reserveLeased(ctx context.Context, req Request) (_ *Reservation, handled bool) {
	p := l.leases
	if p.isClosed() {
		return nil, false
	}
	key := leaseKey(&req)
	s := p.slot(key, req.Entitlement)
	now := l.now()
	s.mu.Lock()
	if r := l.admitLocal(s, req, now); r != nil {
		s.mu.Unlock()
		return r, true
	}
	skip := now.Before(s.noLeaseUntil)
	s.mu.Unlock()
	if skip {
		return nil, false
	}

	// One acquisition at a time per key: a request arriving while one is
	// under way (its own or one taken ahead) waits for it and admits
	// against what it brings.
	s.acq.Lock()
	defer s.acq.Unlock()
	s.mu.Lock()
	now = l.now()
	if r := l.admitLocal(s, req, now); r != nil {
		s.mu.Unlock()
		return r, true
	}
	s.demandTokens += req.Tokens
	s.demandRequests++
	s.mu.Unlock()
	ls := l.acquireLease(ctx, s, req, now)
	if ls == nil {
		return nil, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !l.installLease(s, ls, false) {
		return nil, false
	}
	if r := l.admitLocal(s, req, now); r != nil {
		return r, true
	}
	return nil, false
}

// acquireLease asks Redis for a lease of s's key, sized for s's recent
// demand (req included) and at least MinRequests requests like req. It
// returns nil when no lease may be had now (and, when Redis said why, keeps
// the key from asking again for a while). s.acq is held, s.mu is not.
func (l *Limiter) acquireLease(ctx context.Context, s *leaseSlot, req Request, now time.Time) *lease {
	s.mu.Lock()
	if s.dead || now.Before(s.noLeaseUntil) {
		s.mu.Unlock()
		return nil
	}
	epoch := s.epoch
	elapsed := max(now.Sub(s.since), 10*time.Millisecond).Seconds()
	rt, rr := float64(s.demandTokens)/elapsed, float64(s.demandRequests)/elapsed
	if s.since.IsZero() {
		rt, rr = 0, 0
	}
	s.rateTokens, s.rateRequests = (s.rateTokens+rt)/2, (s.rateRequests+rr)/2
	s.demandTokens, s.demandRequests, s.since = 0, 0, now
	o := l.opts.Leases
	replicas := 1
	if o.Replicas != nil {
		replicas = o.Replicas.ReplicaCount()
	}
	tokens, ask, ok := leaseSizing{RateTokens: s.rateTokens, RateRequests: s.rateRequests, Window: o.Window,
		Estimate: req.Tokens, MinRequests: o.MinRequests, K: o.K, Replicas: replicas,
		RPM: req.RequestsPerMinute, TPM: req.TokensPerMinute}.size()
	s.mu.Unlock()
	unlimited := len(req.Caps) == 0 && req.TokensPerMinute == 0
	if unlimited {
		tokens, ask.min = 0, 0
	}
	if !ok || l.nearMonthEnd(now) {
		return nil
	}

	lid, err := newID()
	if err != nil {
		return nil
	}
	cands := candidates(now, l.opts.Location)
	lreq := req
	lreq.Tokens = tokens
	r, err := l.reserveScript(ctx, lreq, genID(lid, 0), cands, &ask)
	var small *leaseTooSmallError
	var rateErr *RateLimitedError
	switch {
	case err == nil:
	case errors.As(err, &small):
		l.markUp()
		l.noLease(s, now.Add(o.IdleTimeout))
		return nil
	case errors.As(err, &rateErr):
		// The single request may still pass (it takes one request, not a lease's worth).
		l.markUp()
		l.noLease(s, now.Add(max(rateErr.RetryAfter, o.FlushInterval)))
		return nil
	default:
		if mayHaveRun(err) && !errors.As(err, new(*monthMissError)) {
			l.releaseOrphan(lreq, genID(lid, 0), cands)
		}
		// The request's own reserve meets (and reports) the same trouble.
		return nil
	}
	l.markUp()
	l.leases.acquired.Add(1)
	ls := &lease{lid: lid, req: req, m: month{key: r.Month, end: r.monthEnd}, redisTokens: r.Tokens,
		granted: r.Tokens, unlimited: unlimited, slots: -1, deadline: now.Add(o.MaxAge), lastUse: now,
		lefts: r.left, monthLeft: r.monthEnd.Sub(time.UnixMilli(r.redisNow)), epoch: epoch}
	ls.req.Tokens = 0
	ls.scarce = r.Tokens < tokens
	if req.RequestsPerMinute > 0 {
		ls.slots = ask.requests
		ls.grantedSlots = ask.requests
	}
	l.trackLease(ls)
	return ls
}

// installLease makes ls, just acquired, s's current lease (retiring the
// current one) or, when taken ahead while the current one still admits, the
// next. It returns false when ls was given back at once instead: the
// limiter is closing, the key's leases were dropped (a new snapshot) while
// it was asked for, or the month ends before the lease could. s.acq and s.mu
// are held.
func (l *Limiter) installLease(s *leaseSlot, ls *lease, ahead bool) bool {
	// Under s.mu: Close sets closed before it sweeps the slots (each under
	// its lock), so a lease installed while it reads false is swept.
	closed := l.leases.isClosed()
	ls.slot = s
	if closed || s.dead || ls.epoch != s.epoch || ls.monthLeft < 2*l.opts.Leases.MaxAge+time.Second {
		s.retiring = append(s.retiring, ls)
		ls.retired = true
		l.submitAll(l.flushLease(ls, true))
		return false
	}
	if ahead && s.cur != nil && !s.cur.retired && s.next == nil {
		s.next = ls
		return true
	}
	scarce := s.cur != nil && s.cur.scarce
	l.retireCurrent(s)
	if scarce {
		l.sweepRetiring(s)
	}
	s.cur = ls
	return true
}

// takeAhead asks, in the background, for the lease that follows ls once
// ls is half spent (tokens or request slots) or near its deadline, so that
// a steady stream of requests on a key finds the next lease ready instead
// of waiting for Redis when the current one runs out. One at a time per
// key; the lease taken waits as s.next until the current one cannot admit.
// s.mu is held.
func (l *Limiter) takeAhead(s *leaseSlot, ls *lease, req Request, now time.Time) {
	if s.next != nil || s.ahead || s.dead || now.Before(s.noLeaseUntil) || now.Before(s.aheadAfter) || !l.halfSpent(ls, now) {
		return
	}
	p := l.leases
	p.bgMu.Lock()
	defer p.bgMu.Unlock()
	if p.bgClosed {
		return
	}
	s.ahead = true
	p.bg.Add(1)
	go func() {
		defer p.bg.Done()
		l.acquireAhead(s, req)
	}()
}

// halfSpent tells whether ls should have a successor taken ahead. s.mu is held.
func (l *Limiter) halfSpent(ls *lease, now time.Time) bool {
	return (!ls.unlimited && ls.avail() < ls.granted/2) ||
		(ls.grantedSlots > 0 && ls.slots <= ls.grantedSlots/2) ||
		ls.deadline.Sub(now) < l.opts.Leases.MaxAge/4
}

// acquireAhead is takeAhead's goroutine.
func (l *Limiter) acquireAhead(s *leaseSlot, req Request) {
	p := l.leases
	defer func() {
		s.mu.Lock()
		s.ahead = false
		s.mu.Unlock()
	}()
	s.acq.Lock()
	defer s.acq.Unlock()
	now := l.now()
	s.mu.Lock()
	// A request that found the current lease spent may have taken a new
	// one meanwhile, or the key may have been dropped or forgotten.
	stale := s.dead || s.next != nil || s.cur == nil || s.cur.retired || !l.halfSpent(s.cur, now) || p.isClosed()
	s.mu.Unlock()
	if stale {
		return
	}
	ls := l.acquireLease(context.Background(), s, req, now)
	if ls == nil {
		// Redis refused or failed: requests go on spending the current
		// lease, and a slow or failing Redis is not asked again by every
		// request that finds it half spent.
		s.mu.Lock()
		s.aheadAfter = now.Add(l.opts.Leases.FlushInterval)
		s.mu.Unlock()
		return
	}
	p.ahead.Add(1)
	s.mu.Lock()
	l.installLease(s, ls, true)
	s.mu.Unlock()
}

func (l *Limiter) noLease(s *leaseSlot, until time.Time) {
	s.mu.Lock()
	s.noLeaseUntil = until
	s.mu.Unlock()
}

// nearMonthEnd tells whether Redis time, as last seen from here, is too
// close to the end of its month for a lease to live out its MaxAge in it.
func (l *Limiter) nearMonthEnd(now time.Time) bool {
	redisNow := now.Add(time.Duration(l.redisSkewMs.Load()) * time.Millisecond)
	m := monthOf(redisNow, l.opts.Location)
	return m.end.Sub(redisNow) < 2*l.opts.Leases.MaxAge+time.Second
}

// noteRedisTime remembers how far Redis time is from the local clock.
func (l *Limiter) noteRedisTime(ms int64) {
	l.redisSkewMs.Store(ms - l.now().UnixMilli())
}

// admitLocal admits req against s's current lease, or against the next one
// (which then becomes current) when the current one cannot, or returns nil.
// s.mu is held.
func (l *Limiter) admitLocal(s *leaseSlot, req Request, now time.Time) *Reservation {
	ls := s.cur
	if !ls.admits(req, now) {
		next := s.next
		if next == nil {
			return nil
		}
		s.next = nil
		if ls != nil {
			l.retire(ls)
			if ls.scarce {
				// Give back what it holds beyond its calls in flight now, not
				// at the next tick: near the end of a cap those tokens are
				// needed. (Otherwise the tick's batch does it, in one
				// pipeline with the other keys'.)
				l.sweepRetiring(s)
			}
		}
		s.cur = next
		if !next.admits(req, now) {
			return nil
		}
		ls = next
	}
	ls.inflightTokens += req.Tokens
	ls.inflight++
	if ls.slots > 0 {
		ls.slots--
	}
	ls.lastUse = now
	s.lastUse = now
	s.demandTokens += req.Tokens
	s.demandRequests++
	ls.seq++
	l.leases.admitted.Add(1)
	l.takeAhead(s, ls, req, now)
	r := &Reservation{ID: ls.lid + "-" + strconv.Itoa(ls.seq), Month: ls.m.key, Tokens: req.Tokens, Remaining: -1,
		ResetAt: ls.m.end, req: req, monthEnd: ls.m.end, lease: ls}
	if len(ls.lefts) > 0 {
		// What others left when the lease was taken, plus what the lease
		// still has: approximate, since other replicas spend meanwhile.
		r.left = make([]int64, len(ls.lefts))
		for i, left := range ls.lefts {
			r.left[i] = left + max(0, ls.avail())
			if r.Remaining < 0 || r.left[i] < r.Remaining {
				r.Remaining = r.left[i]
			}
		}
	}
	return r
}

// admits tells whether ls (nil: none) can admit req now.
func (ls *lease) admits(req Request, now time.Time) bool {
	return ls != nil && !ls.retired && now.Before(ls.deadline) && !ls.broken.Load() &&
		(ls.unlimited || ls.avail() >= req.Tokens) && ls.slots != 0
}

// leaseDone records the settlement or release s of r, drawn from a lease.
func (l *Limiter) leaseDone(ctx context.Context, r *Reservation, s *settlement) error {
	ls := r.lease
	sl := ls.slot
	sl.mu.Lock()
	ls.inflight--
	ls.inflightTokens -= r.Tokens
	if ls.returned {
		sl.mu.Unlock()
		// The lease is gone (shutdown, month end): this call settles on its
		// own, as one whose reservation Redis no longer holds.
		s.ID, s.Tokens, s.Held = r.ID, 0, false
		return l.submit(ctx, s)
	}
	key := leaseLineKey{account: s.Account, team: s.Team, principal: s.Principal, model: s.Model, tier: s.Tier, profile: s.Profile}
	ln := ls.pending[key]
	if ln == nil {
		if ls.pending == nil {
			ls.pending = map[leaseLineKey]*leaseLine{}
		}
		ln = &leaseLine{leaseLineKey: key}
		ls.pending[key] = ln
	}
	if s.Kind == kindSettle {
		ln.counted += s.Counted
		ls.pendingCounted += s.Counted
		ln.usage.InputTokens += s.Usage.InputTokens
		ln.usage.OutputTokens += s.Usage.OutputTokens
		ln.usage.CacheReadTokens += s.Usage.CacheReadTokens
		ln.usage.CacheWriteTokens += s.Usage.CacheWriteTokens
		ln.requests++
		if s.Usage.Estimated {
			ln.estimated++
		}
		if s.Usage.Failed {
			ln.errors++
		}
	} else {
		ln.errors++
	}
	ls.npending++
	var out []*settlement
	// A call that used more than its estimate (typical estimates) can
	// overdraw the lease: Redis must see that usage at once, as it would a
	// request's own settlement, or other admissions take the room it needs.
	switch {
	case ls.retired && ls.inflight == 0 && ls.scarce:
		// Its last call: give it back now rather than at the next tick, so
		// that near the end of a cap what it held is free at once.
		out = l.flushLease(ls, true)
		sl.retiring = slices.DeleteFunc(sl.retiring, func(x *lease) bool { return x == ls })
	case ls.npending >= l.opts.Leases.FlushSize || (!ls.unlimited && ls.avail() < 0):
		out = l.flushLease(ls, false)
	}
	err := l.submitAll(out)
	sl.mu.Unlock()
	return err
}

// retire stops ls admitting; its calls still settle against it. s.mu is held.
func (l *Limiter) retire(ls *lease) {
	if ls.retired {
		return
	}
	ls.retired = true
	s := ls.slot
	if s.cur == ls {
		s.cur = nil
	}
	if s.next == ls {
		s.next = nil
	}
	s.retiring = append(s.retiring, ls)
}

// flushLease turns ls's pending usage into settlements, one per ledger line,
// each moving its usage from the lease to the caps in Redis. The last keeps
// what the lease should go on holding: all of it while it admits, what its
// calls in flight need once retired, nothing when final (the lease is
// returned). s.mu is held; the caller submits them in order.
func (l *Limiter) flushLease(ls *lease, final bool) []*settlement {
	if ls.returned {
		return nil
	}
	lines := make([]*leaseLine, 0, len(ls.pending))
	for _, ln := range ls.pending {
		lines = append(lines, ln)
	}
	slices.SortFunc(lines, func(a, b *leaseLine) int {
		return strings.Compare(a.account+"|"+a.team+"|"+a.model+"|"+a.tier, b.account+"|"+b.team+"|"+b.model+"|"+b.tier)
	})
	target := ls.redisTokens - ls.pendingCounted // what it holds once the lines are charged
	if ls.retired {
		target = min(target, ls.inflightTokens)
	}
	if final {
		target = 0
	}
	target = max(0, target)
	var slotsBack int64
	if final && ls.slots > 0 && ls.req.RequestsPerMinute > 0 {
		slotsBack = ls.slots
	}
	if len(lines) == 0 {
		if target == ls.redisTokens && slotsBack == 0 {
			if final {
				ls.returned = true // already nothing held
				l.leases.returned.Add(1)
			}
			return nil
		}
		lines = append(lines, &leaseLine{leaseLineKey: leaseLineKey{account: ls.req.Account}}) // a return, shrink or slots' return without usage
	}
	out := make([]*settlement, 0, len(lines))
	for i, ln := range lines {
		keep := max(0, ls.redisTokens-ln.counted)
		if i == len(lines)-1 {
			keep = min(keep, target)
		}
		out = append(out, &settlement{Kind: kindLease, ID: genID(ls.lid, ls.gen), LeaseNext: genID(ls.lid, ls.gen+1),
			Entitlement: ls.req.Entitlement, Account: ln.account, Team: ln.team, Principal: ln.principal, Model: ln.model, Tier: ln.tier, Profile: ln.profile,
			Month: ls.m.key, MonthEnd: ls.m.end, Caps: ls.req.Caps, Counted: ln.counted, Usage: ln.usage,
			Tokens: ls.redisTokens, TPM: ls.req.TokensPerMinute, Held: len(ls.req.Caps) > 0, LeaseKeep: keep,
			Requests: ln.requests, Errors: ln.errors, Estimated: ln.estimated, lease: ls})
		ls.redisTokens = keep
		ls.gen++
	}
	if slotsBack > 0 {
		last := out[len(out)-1]
		last.RPM, last.SlotsBack = ls.req.RequestsPerMinute, slotsBack
		ls.slots = 0
	}
	ls.pending, ls.npending, ls.pendingCounted = nil, 0, 0
	if final {
		ls.returned = true
		l.leases.returned.Add(1)
	}
	return out
}

// submitAll queues settlements in order (writing them at once when the
// queue is full, as Settle does).
func (l *Limiter) submitAll(out []*settlement) error {
	var errs []error
	for _, s := range out {
		if err := l.submit(context.Background(), s); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// trackLease has the refresher extend the lease's expiry while it lives.
func (l *Limiter) trackLease(ls *lease) {
	if len(ls.req.Caps) == 0 {
		return
	}
	k := l.keysFor(ls.req.Entitlement)
	h := held{entitlement: ls.req.Entitlement, member: reservationMember(genID(ls.lid, 0), ls.redisTokens)}
	for _, c := range ls.req.Caps {
		h.zsets = append(h.zsets, k.capZset(ls.m.key, c))
	}
	l.heldMu.Lock()
	l.held[ls.lid] = h
	l.heldMu.Unlock()
}

// leaseWritten follows a lease settlement the worker wrote: the refresher
// extends the next generation from now on, or lets go of a returned lease;
// a lease Redis no longer held (it expired) admits nothing more. From the
// worker goroutine (or a Settle writing at once): it takes no slot lock.
// It reports whether Redis lost the lease with this settlement (the first
// to find it gone).
func (l *Limiter) leaseWritten(s *settlement, status int64) (lost bool) {
	ls := s.lease
	if ls == nil {
		return status == 2 // read back from a spill file: nothing local to follow
	}
	if status == 2 {
		lost = !ls.broken.Swap(true)
	}
	l.heldMu.Lock()
	defer l.heldMu.Unlock()
	h, ok := l.held[ls.lid]
	if !ok {
		return lost
	}
	if s.LeaseKeep == 0 || status == 2 {
		delete(l.held, ls.lid)
		return lost
	}
	h.member = reservationMember(s.LeaseNext, s.LeaseKeep)
	l.held[ls.lid] = h
	return lost
}

// DropLeases retires the leases of the named entitlements (all of them with
// none named): the state changed, and the next request must be decided by
// the new limits (it takes a new lease, or reserves on its own). What they
// hold beyond their calls in flight is given back by the lease loop within
// FlushInterval (or by Flush): DropLeases itself never waits on Redis or
// the settlement queue, since the state syncer calls it with every new
// snapshot and must not stall (a revocation waits behind it).
func (l *Limiter) DropLeases(entitlements ...string) {
	p := l.leases
	if p == nil {
		return
	}
	for _, s := range p.all() {
		if len(entitlements) > 0 && !slices.Contains(entitlements, s.entitlement) {
			continue
		}
		s.mu.Lock()
		l.retireCurrent(s)
		s.epoch++
		s.noLeaseUntil = time.Time{}
		s.mu.Unlock()
	}
}

// retireCurrent retires s's current and next leases. s.mu is held.
func (l *Limiter) retireCurrent(s *leaseSlot) {
	if s.next != nil {
		l.retire(s.next)
	}
	if s.cur != nil {
		l.retire(s.cur)
	}
}

func (p *leasePool) all() []*leaseSlot {
	p.mu.RLock()
	defer p.mu.RUnlock()
	out := make([]*leaseSlot, 0, len(p.slots))
	for _, s := range p.slots {
		out = append(out, s)
	}
	return out
}

func (p *leasePool) isClosed() bool { return p.closed.Load() }

// sweepRetiring writes retired leases' usage, returns those without calls in
// flight and shrinks the others to what their calls need. s.mu is held.
func (l *Limiter) sweepRetiring(s *leaseSlot) {
	kept := s.retiring[:0]
	var out []*settlement
	for _, ls := range s.retiring {
		if ls.inflight == 0 || ls.returned {
			out = append(out, l.flushLease(ls, true)...)
			continue
		}
		out = append(out, l.flushLease(ls, false)...)
		kept = append(kept, ls)
	}
	clear(s.retiring[len(kept):])
	s.retiring = kept
	if err := l.submitAll(out); err != nil {
		l.log.Warn("queueing lease settlements", "err", err)
	}
}

// leaseLoop writes settled usage every FlushInterval, retires leases past
// their deadline or idle, returns retired ones and forgets empty keys.
func (l *Limiter) leaseLoop() {
	p := l.leases
	defer close(p.done)
	for {
		c, stop := l.opts.Clock.After(l.opts.Leases.FlushInterval)
		select {
		case <-c:
		case <-p.stop:
			stop()
			return
		}
		stop()
		l.tickLeases(l.now())
	}
}

// tickLeases is one pass of leaseLoop.
func (l *Limiter) tickLeases(now time.Time) {
	p := l.leases
	o := l.opts.Leases
	for _, s := range p.all() {
		s.mu.Lock()
		if ls := s.cur; ls != nil && (!now.Before(ls.deadline) || now.Sub(ls.lastUse) >= o.IdleTimeout || ls.broken.Load()) {
			l.retire(ls)
		}
		// The lease taken ahead has admitted nothing yet: it is idle when
		// the key is, not when it has waited IdleTimeout behind a current
		// lease that is still in use (at a few requests a second it may).
		if ls := s.next; ls != nil && (!now.Before(ls.deadline) || now.Sub(s.lastUse) >= o.IdleTimeout || ls.broken.Load()) {
			l.retire(ls)
		}
		if ls := s.cur; ls != nil && ls.npending > 0 {
			if err := l.submitAll(l.flushLease(ls, false)); err != nil {
				l.log.Warn("queueing lease settlements", "err", err)
			}
		}
		l.sweepRetiring(s)
		empty := s.cur == nil && s.next == nil && len(s.retiring) == 0 && now.Sub(s.lastUse) >= o.IdleTimeout
		s.mu.Unlock()
		if empty {
			p.forget(s)
		}
	}
}

// forget removes an empty slot, unless a lease is being asked for on it.
func (p *leasePool) forget(s *leaseSlot) {
	if !s.acq.TryLock() {
		return
	}
	defer s.acq.Unlock()
	p.mu.Lock()
	defer p.mu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur != nil || s.next != nil || len(s.retiring) > 0 || s.dead {
		return
	}
	for k, v := range p.slots {
		if v == s {
			delete(p.slots, k)
			break
		}
	}
	s.dead = true
}

// closeLeases stops the lease loop and returns every lease (its usage
// written first); calls still in flight then settle on their own. Close
// calls it before the worker stops.
func (l *Limiter) closeLeases() {
	p := l.leases
	if p == nil {
		return
	}
	if p.closed.Swap(true) {
		return
	}
	close(p.stop)
	<-p.done
	// Leases being taken ahead finish first (bounded by Options.Timeout);
	// one that arrives now is given back by installLease.
	p.bgMu.Lock()
	p.bgClosed = true
	p.bgMu.Unlock()
	p.bg.Wait()
	for _, s := range p.all() {
		s.mu.Lock()
		l.retireCurrent(s)
		var out []*settlement
		for _, ls := range s.retiring {
			out = append(out, l.flushLease(ls, true)...)
		}
		s.retiring = nil
		if err := l.submitAll(out); err != nil {
			l.log.Warn("queueing lease returns at shutdown", "err", err)
		}
		s.mu.Unlock()
	}
}

// flushLeaseUsage queues the usage settled against every lease so far, for
// Flush.
func (l *Limiter) flushLeaseUsage() {
	p := l.leases
	if p == nil {
		return
	}
	for _, s := range p.all() {
		s.mu.Lock()
		var out []*settlement
		if s.cur != nil {
			out = l.flushLease(s.cur, false)
		}
		for _, ls := range s.retiring {
			out = append(out, l.flushLease(ls, false)...)
		}
		if err := l.submitAll(out); err != nil {
			l.log.Warn("queueing lease settlements", "err", err)
		}
		s.mu.Unlock()
	}
}
