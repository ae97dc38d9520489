package quota

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/time/rate"
)

// Level is the level a monthly cap applies at.
type Level string

// Cap levels.
const (
	LevelEntitlement Level = "entitlement"
	LevelShare       Level = "share"
	LevelAccount     Level = "account"
)

// Rate limit names, as in RateLimitedError.Limit.
const (
	LimitRequestsPerMinute = "requests_per_minute"
	LimitTokensPerMinute   = "tokens_per_minute"
)

// Cap is one monthly token cap that applies to a request.
type Cap struct {
	Level Level `json:"level"`
	// Target is the entitlement name at entitlement level, the share's target
	// (account, OU or organization ID) at share level, the account ID at
	// account level.
	Target string `json:"target"`
	// Limit is tokens per calendar month; 0 means no cap (skipped).
	Limit int64 `json:"limit"`
	// Thresholds are budget-alert thresholds in percent of Limit.
	Thresholds []int `json:"thresholds,omitempty"`
}

// Request is one admission decision.
type Request struct {
	Entitlement string
	Account     string
	Model       string // upstream model, recorded in the ledger
	Caps        []Cap
	// RequestsPerMinute and TokensPerMinute are per account per entitlement;
	// 0 means no limit.
	RequestsPerMinute, TokensPerMinute int64
	// Tokens is the estimate, already counted per the entitlement's count rule.
	Tokens int64
	// FailOpen admits under a local limiter when Redis is unreachable.
	FailOpen bool
	// Tier is the pricing tier recorded in the ledger
	// (bedrock.RequestOptions.PricingTier); empty or "default" is the default tier.
	Tier string
	// Team is the account's team when the call is made, recorded in the
	// ledger so moving the account later does not move its past usage.
	Team string
	// Principal is the caller's canonical IAM principal ARN (see
	// state.CanonicalPrincipal), recorded in the ledger; empty for
	// gateway-issued credentials.
	Principal string
	// Profile is the application inference profile ARN the call went to
	// instead of Model (billing.profiles), recorded beside it in the
	// ledger; empty: the model itself.
	Profile string
}

// Reservation is an admitted request's hold on its caps, to be settled or
// released exactly once (repeats are harmless).
type Reservation struct {
	ID     string
	Month  string // the month the request counts in, e.g. "2026-11"
	Tokens int64
	// Remaining is the smallest limit-used-reserved over the caps after this
	// reservation; -1 when no cap applies (or when Degraded).
	Remaining int64
	ResetAt   time.Time // start of the next month in the configured zone
	// Degraded is true when the request was admitted by the local fail-open
	// limiter while Redis was unreachable.
	Degraded bool

	req      Request // Caps filtered to Limit>0 and deduplicated
	left     []int64 // per cap of req.Caps: limit-used-reserved after this reservation
	monthEnd time.Time
	done     atomic.Bool // set once Settle or Release handed it on
	lease    *lease      // the lease it was admitted against; nil: its own reservation
	redisNow int64       // Redis time of the reserve, ms
}

// RemainingAt is the smallest limit-used-reserved, after this reservation,
// over the caps at the given levels; -1 when none of them applies (or when
// Degraded). A caller shows a member only its own caps this way: the
// entitlement-wide cap is shared by every member and is not theirs to see.
func (r *Reservation) RemainingAt(levels ...Level) int64 {
	rem := int64(-1)
	for i, c := range r.req.Caps {
		if i >= len(r.left) || !slices.Contains(levels, c.Level) {
			continue
		}
		if left := r.left[i]; rem < 0 || left < rem {
			rem = left
		}
	}
	return rem
}

// Alert is one budget threshold crossing, reported once per cap, threshold
// and month across all replicas.
type Alert struct {
	Entitlement string
	Level       Level
	Target      string
	Threshold   int
	Used, Limit int64
	Month       string
}

// CapExceededError is returned when a monthly cap cannot hold the request.
type CapExceededError struct {
	Entitlement string
	Level       Level
	Target      string
	Limit, Used int64
	Reserved    int64 // held by requests in flight
	Requested   int64
	ResetAt     time.Time
}

func (e *CapExceededError) Error() string {
	what := "monthly token cap"
	switch e.Level {
	case LevelEntitlement:
		what = "monthly token cap of entitlement " + e.Target
	case LevelShare:
		what = "monthly token cap of the share to " + e.Target
	case LevelAccount:
		what = "monthly token cap of account " + e.Target
	}
	if e.Entitlement != "" && e.Level != LevelEntitlement {
		what += " on entitlement " + e.Entitlement
	}
	return fmt.Sprintf("%s is spent (%d of %d tokens used); it resets at %s",
		what, e.Used+e.Reserved, e.Limit, e.ResetAt.Format(time.RFC3339))
}

// RateLimitedError is returned when a per-minute rate limit refuses the request.
type RateLimitedError struct {
	Limit      string // LimitRequestsPerMinute or LimitTokensPerMinute
	RetryAfter time.Duration
}

func (e *RateLimitedError) Error() string {
	return fmt.Sprintf("rate limit %s exceeded; retry after %s", e.Limit, e.RetryAfter)
}

// ErrStoreUnavailable is returned (wrapped) for fail-closed requests while
// Redis is unreachable, and for fail-open ones when the local limiter or the
// settlement queue has no room left.
var ErrStoreUnavailable = errors.New("quota store unavailable")

// errBadResult marks a script reply the code does not understand: a bug, not an outage.
var errBadResult = errors.New("unexpected quota script result")

// ErrClosed is returned by Settle and Release after Close.
var ErrClosed = errors.New("quota limiter closed")

// Options configure a Limiter. Zero values take the documented defaults.
type Options struct {
	// Client is the Redis client (single node, Sentinel or Cluster). Build it
	// with ContextTimeoutEnabled so Timeout applies. Required.
	Client redis.UniversalClient
	// Location sets month boundaries; default UTC.
	Location *time.Location
	// Prefix starts every key; default "gw". It must not contain '{' or '}'.
	Prefix string
	// ReservationTTL is how long a reservation holds tokens once its replica
	// stops refreshing it (a crash, a stall, a lost Redis); later script runs
	// and Status purge it then. In-flight reservations are refreshed every
	// RefreshInterval, so it need not exceed the longest request. Default 15m.
	ReservationTTL time.Duration
	// Grace keeps cap and alert keys after the end of their month; default 35 days.
	Grace time.Duration
	// Timeout bounds each Redis call; default 500ms.
	Timeout time.Duration
	// Logger; default slog.Default().
	Logger *slog.Logger
	// OnAlert is called once per threshold crossing from the goroutine that
	// wrote the settlement; it should not block. May be nil.
	OnAlert func(Alert)
	// FailOpenRate is the local limiter for fail-open admissions, requests/s per
	// replica; default 50. FailOpenBurst defaults to 100.
	FailOpenRate  float64
	FailOpenBurst int
	// QueueSize bounds the settlement queue; default 65536.
	QueueSize int
	// SpillFile receives, at Close, queued settlements that could not be
	// written, and is read back (and removed) by New. "" = no spill. Each
	// replica needs its own file.
	SpillFile string
	// BatchSize is settlements per pipeline; default 128.
	BatchSize int
	// ProbeInterval is how often the worker pings Redis while degraded; the
	// first answer wakes the settlement worker at once. Default 100ms.
	ProbeInterval time.Duration
	// HealthInterval is how often an idle worker pings Redis while it is
	// healthy, so a replica without traffic notices an outage (readiness,
	// gateway_store_degraded) as soon as busy ones do. Default 1s.
	HealthInterval time.Duration
	// RefreshInterval is how often the expiry of this replica's in-flight
	// reservations is extended (one pipelined round trip for all of them), so
	// a reservation holds for as long as its call runs; default
	// ReservationTTL/3. The TTL then only bounds what a crashed replica leaves.
	RefreshInterval time.Duration
	// OnReservationExpired is called when a settlement finds that its
	// reservation had expired (and been purged) before it was written: the
	// usage is still charged, but the cap did not hold those tokens for the
	// whole call. From the goroutine that wrote it; it should not block. May be nil.
	OnReservationExpired func(entitlement string)
	// UsageStreamMaxLen, when positive, also appends one event per settled or
	// released request to the Redis Stream "<prefix>:usage-events", trimmed to
	// about this many entries, for billing pipelines to read with consumer
	// groups. The ledger stays the record: events are written after the
	// settlement, at least once (dedupe on "id"), and dropped when Redis fails.
	UsageStreamMaxLen int64
	// Clock is the replica's clock and the timers of the background loops;
	// default the wall clock. Decisions made in Redis are dated by Redis TIME,
	// never by this clock (see "Time" in the package doc).
	Clock Clock
	// RedisTimeOffset, when set, is added to Redis TIME wherever the limiter
	// reads it: it is every script's time_offset_ms argument, and it shifts
	// the Redis time Status picks the month by. It is how a deployment could
	// correct a Redis server whose clock is known to be off (every replica
	// must then use the same offset), and how tests move Redis time without
	// waiting on it. Nil, as in production, is 0. Called on every script run.
	RedisTimeOffset func() time.Duration
	// Leases configure admission against leases (see "Leases" in the
	// package doc); off unless Leases.Enabled.
	Leases LeaseOptions
}

// ledgerRetention keeps ledger keys for this long after the end of their month.
const ledgerRetention = 400 * 24 * time.Hour

// Limiter reserves, settles and reports token usage. It is safe for concurrent use.
type Limiter struct {
	opts    Options
	client  redis.UniversalClient
	log     *slog.Logger
	reserve *redis.Script
	settle  *redis.Script
	local   *rate.Limiter

	status        *redis.Script
	refreshScript *redis.Script
	// held lists this replica's reservations still to settle, for the refresher.
	heldMu        sync.Mutex
	held          map[string]held
	refreshKick   chan struct{} // Redis answers again: refresh now
	refreshStop   chan struct{}
	refreshDone   chan struct{}
	refreshRounds atomic.Int64  // refresh passes done, for tests
	up            chan struct{} // Redis answers again: the worker retries at once

	healthy atomic.Bool
	// leases is nil unless Options.Leases.Enabled.
	leases *leasePool
	// redisSkewMs is Redis time minus the local clock at the last reserve.
	redisSkewMs atomic.Int64
	// wiped is set while the store has lost its data (the state syncer
	// detects it): cap counters restarted at zero cannot be trusted, so
	// admission runs as when Redis is unreachable.
	wiped atomic.Bool
	// healthMisses counts consecutive failed health pings (the worker's only).
	healthMisses int
	wake         chan struct{} // tells an idle worker to start probing
	// inflightDegraded counts fail-open admissions not yet settled, so that
	// degraded admissions never outgrow the queue that must hold their usage.
	inflightDegraded atomic.Int64

	// closeMu guards sends on queue against Close.
	closeMu   sync.RWMutex
	closed    bool
	stopping  chan struct{} // closed when Close starts: unblocks waiting senders
	queue     chan *settlement
	closeCh   chan context.Context
	closeOnce sync.Once
	done      chan struct{} // closed when the worker has exited
	closeErr  error         // set by the worker before done is closed
	backlog   []*settlement // reloaded from the spill file; the worker's own
	spillMu   sync.Mutex
}

//go:embed reserve.lua
var reserveLua string

//go:embed settle.lua
var settleLua string

//go:embed status.lua
var statusLua string

// New validates opts, loads the scripts (starting degraded if Redis is
// unreachable), re-queues any spilled settlements and starts the worker.
func New(opts Options) (*Limiter, error) {
	if opts.Client == nil {
		return nil, errors.New("quota: Options.Client is required")
	}
	if opts.Location == nil {
		opts.Location = time.UTC
	}
	if opts.Prefix == "" {
		opts.Prefix = "gw"
	}
	if strings.ContainsAny(opts.Prefix, "{}") {
		return nil, fmt.Errorf("quota: prefix %q must not contain braces", opts.Prefix)
	}
	if opts.ReservationTTL <= 0 {
		opts.ReservationTTL = 15 * time.Minute
	}
	if opts.Grace <= 0 {
		opts.Grace = 35 * 24 * time.Hour
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 500 * time.Millisecond
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.FailOpenRate <= 0 {
		opts.FailOpenRate = 50
	}
	if opts.FailOpenBurst <= 0 {
		opts.FailOpenBurst = 100
	}
	if opts.QueueSize <= 0 {
		opts.QueueSize = 65536
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = 128
	}
	if opts.HealthInterval <= 0 {
		opts.HealthInterval = time.Second
	}
	if opts.ProbeInterval <= 0 {
		opts.ProbeInterval = 100 * time.Millisecond
	}
	if opts.RefreshInterval <= 0 {
		opts.RefreshInterval = opts.ReservationTTL / 3
	}
	if opts.Clock == nil {
		opts.Clock = wallClock{}
	}
	l := &Limiter{
		opts:     opts,
		client:   opts.Client,
		log:      opts.Logger,
		reserve:  redis.NewScript(reserveLua),
		settle:   redis.NewScript(settleLua),
		local:    rate.NewLimiter(rate.Limit(opts.FailOpenRate), opts.FailOpenBurst),
		queue:    make(chan *settlement, opts.QueueSize),
		closeCh:  make(chan context.Context),
		stopping: make(chan struct{}),
		wake:     make(chan struct{}, 1),
		done:     make(chan struct{}),

		status:        redis.NewScript(statusLua),
		refreshScript: redis.NewScript(refreshLua),
		held:          map[string]held{},
		refreshKick:   make(chan struct{}, 1),
		refreshStop:   make(chan struct{}),
		refreshDone:   make(chan struct{}),
		up:            make(chan struct{}, 1),
	}
	l.healthy.Store(true)
	if err := l.loadScripts(context.Background()); err != nil {
		if !isUnreachable(err) {
			return nil, fmt.Errorf("loading quota scripts: %w", err)
		}
		l.markDown("loading scripts", err)
	}
	if opts.SpillFile != "" {
		items, err := readSpill(opts.SpillFile)
		if err != nil {
			return nil, fmt.Errorf("reading quota spill file: %w", err)
		}
		if len(items) > 0 {
			l.log.Info("re-queued spilled quota settlements", "count", len(items), "file", opts.SpillFile)
		}
		l.backlog = items
	}
	if opts.Leases.Enabled {
		l.opts.Leases.defaults(opts.ReservationTTL)
		l.leases = &leasePool{slots: map[string]*leaseSlot{}, stop: make(chan struct{}), done: make(chan struct{})}
	}
	go l.work()
	go l.refreshLoop()
	if l.leases != nil {
		go l.leaseLoop()
	}
	return l, nil
}

// Healthy reports false while Redis is unreachable (degraded).
func (l *Limiter) Healthy() bool { return l.healthy.Load() }

// SetWiped tells the limiter whether the store lost its data. While it has,
// every cap's counter restarted at zero and would admit a month's usage again:
// fail_closed entitlements are refused and fail_open ones admitted by the
// local limiter, exactly as while Redis is unreachable, until an operator
// restores the store. Settlements are still written.
func (l *Limiter) SetWiped(wiped bool) {
	if l.wiped.Swap(wiped) != wiped {
		l.log.Warn("quota admission follows the store's wiped state", "wiped", wiped)
	}
}

func (l *Limiter) loadScripts(ctx context.Context) error {
	for _, s := range []*redis.Script{l.reserve, l.settle, l.status, l.refreshScript} {
		cctx, cancel := context.WithTimeout(ctx, l.opts.Timeout)
		err := s.Load(cctx, l.client).Err()
		cancel()
		if err != nil {
			return err
		}
	}
	return nil
}

func (l *Limiter) markDown(op string, err error) {
	if l.healthy.Swap(false) {
		l.log.Warn("quota store unreachable; degraded", "op", op, "err", err)
		select {
		case l.wake <- struct{}{}:
		default:
		}
	}
}

func (l *Limiter) markUp() {
	if !l.healthy.Swap(true) {
		l.log.Info("quota store reachable again")
		// Queued settlements are written and reservations extended now, not
		// after a backoff or a refresh interval.
		for _, c := range []chan struct{}{l.up, l.refreshKick} {
			select {
			case c <- struct{}{}:
			default:
			}
		}
	}
}

// now is the replica's clock.
func (l *Limiter) now() time.Time { return l.opts.Clock.Now() }

// redisOffset is Options.RedisTimeOffset, 0 when unset.
func (l *Limiter) redisOffset() time.Duration {
	if l.opts.RedisTimeOffset == nil {
		return 0
	}
	return l.opts.RedisTimeOffset()
}

// timeOffsetMs is the time_offset_ms argument every script takes first.
func (l *Limiter) timeOffsetMs() int64 { return l.redisOffset().Milliseconds() }

// isUnreachable tells a store outage (connection refused or reset, timeouts,
// a cluster without a master for the slot, a server still loading) from a
// reply error such as a failing script, which is a bug and never an outage.
func isUnreachable(err error) bool {
	if err == nil || errors.Is(err, errBadResult) {
		return false
	}
	var rerr redis.Error
	if errors.As(err, &rerr) {
		return redis.IsLoadingError(err) || redis.IsClusterDownError(err) ||
			redis.IsTryAgainError(err) || redis.IsMasterDownError(err)
	}
	return true
}

func isNoScript(err error) bool {
	return errors.Is(err, redis.ErrNoScript) || redis.HasErrorPrefix(err, "NOSCRIPT")
}
