// Package metering owns three things: the Prometheus metric families (names
// and labels are a public contract), the price table (--prices-file, also
// exported as a metric) and the budget-alert notifier (signed webhooks with
// retries). The usage and quota reports are in package report.
package metering

import (
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/bedrock-gateway/gateway/internal/bedrock"
)

// Metrics holds the gateway's metric families on a private registry.
type Metrics struct {
	Registry *prometheus.Registry

	requests         *prometheus.CounterVec
	tokens           *prometheus.CounterVec
	duration         *prometheus.HistogramVec
	ttfb             *prometheus.HistogramVec
	overhead         *prometheus.HistogramVec
	quotaRemaining   *prometheus.GaugeVec
	quotaRejections  *prometheus.CounterVec
	budgetAlerts     *prometheus.CounterVec
	storeErrors      *prometheus.CounterVec
	inflight         prometheus.Gauge
	storeDegraded    prometheus.Gauge
	storeWiped       prometheus.Gauge
	storePersistence *optionalGauge
	snapshotVersion  prometheus.Gauge
	upstreamFailures *prometheus.CounterVec
	usageEstimated   *prometheus.CounterVec
	// reservationsExpired counts settlements whose reservation had expired.
	reservationsExpired *prometheus.CounterVec
	redisRoundTrips     prometheus.Counter

	overheadByOp [16]prometheus.Observer // indexed by bedrock.Operation

	// observer also receives every finished request (the CloudWatch
	// publisher): the same figures, not a second accounting path.
	observer atomic.Pointer[observerBox]

	dropAccount bool
	// children caches label children per request key so the hot path does not
	// hash label values into the vectors on every request.
	children sync.Map // childKey -> *requestChildren
	tokenCh  sync.Map // tokenKey -> *tokenChildren
}

// Options configure Metrics.
type Options struct {
	// DropAccountLabel leaves the account label empty (for very large organizations).
	DropAccountLabel bool
	// LogDropped, when set, is read for gateway_log_lines_dropped_total: log
	// lines dropped because the log output could not keep up.
	LogDropped func() uint64
}

// NewMetrics creates the metric families and registers them, with Go and process
// collectors, on a new private registry.
func NewMetrics(opts Options) *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{Registry: reg, dropAccount: opts.DropAccountLabel}
	latency := []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gateway_requests_total", Help: "Requests by entitlement, team, account, operation and HTTP status code.",
	}, []string{"entitlement", "team", "account", "operation", "code"})
	m.tokens = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gateway_tokens_total", Help: "Tokens reported by Bedrock, by type (input, output, cache_read, cache_write) and pricing tier.",
	}, []string{"entitlement", "team", "account", "model", "type", "tier"})
	m.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "gateway_request_duration_seconds", Help: "Whole request duration, including the upstream call and streaming.", Buckets: latency,
	}, []string{"entitlement", "operation"})
	m.ttfb = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "gateway_time_to_first_byte_seconds", Help: "Time from request arrival to the first response byte sent to the client.", Buckets: latency,
	}, []string{"entitlement", "operation"})
	m.overhead = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "gateway_overhead_seconds", Help: "The gateway's own time per request, excluding time waiting on the upstream.",
		Buckets: []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1},
	}, []string{"operation"})
	m.quotaRemaining = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "gateway_quota_remaining_tokens", Help: "Tokens left in the current month of a cap, as last seen by this replica.",
	}, []string{"entitlement", "level", "target"})
	m.quotaRejections = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gateway_quota_rejections_total", Help: "Requests refused by a cap or rate limit, by reason.",
	}, []string{"entitlement", "team", "account", "reason"})
	m.budgetAlerts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gateway_budget_alerts_total", Help: "Budget alert thresholds crossed (once per cap, threshold and month across replicas).",
	}, []string{"entitlement", "threshold"})
	m.storeErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gateway_store_errors_total", Help: "Failed Redis operations by operation.",
	}, []string{"op"})
	m.inflight = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "gateway_inflight_requests", Help: "Requests being served now.",
	})
	m.storeDegraded = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "gateway_store_degraded", Help: "1 while the quota store is unreachable and fail_open entitlements run on local limits.",
	})
	m.storePersistence = newOptionalGauge("gateway_store_persistence_enabled",
		"1 when every Redis server keeps its data across a restart (AOF or RDB snapshots), 0 when one does not; absent when Redis does not show its configuration.")
	m.storeWiped = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "gateway_store_wiped",
		Help: "1 while the state store has lost its data (Redis restarted empty or was flushed): the replica serves its last good snapshot and refuses fail_closed calls until an operator restores the store with gateway apply.",
	})
	m.snapshotVersion = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "gateway_state_version", Help: "Version of the state snapshot this replica serves from.",
	})
	m.upstreamFailures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gateway_upstream_failures_total", Help: "Upstream calls that failed before or during the response, by reason.",
	}, []string{"reason"})
	m.usageEstimated = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gateway_usage_estimated_total",
		Help: "Requests whose usage Bedrock did not report (a stream that broke, a client gone past the drain timeout, a shutdown), charged and counted in gateway_tokens_total as the input estimate plus the output seen.",
	}, []string{"entitlement"})
	m.reservationsExpired = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gateway_reservations_expired_total",
		Help: "Calls settled after their quota reservation had expired (the cap did not hold their tokens throughout; the usage is still charged).",
	}, []string{"entitlement"})
	reg.MustRegister(m.reservationsExpired)
	m.redisRoundTrips = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "gateway_redis_round_trips_total",
		Help: "Commands and pipelines this replica sent to Redis (each one round trip; a cluster pipeline spanning shards counts once).",
	})
	reg.MustRegister(m.redisRoundTrips)
	logDropped := opts.LogDropped
	if logDropped == nil {
		logDropped = func() uint64 { return 0 }
	}
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "gateway_log_lines_dropped_total",
		Help: "Log lines (access log included) dropped because the log output could not keep up and its buffer was full.",
	}, func() float64 { return float64(logDropped()) }))
	for op := bedrock.Operation(0); int(op) < len(m.overheadByOp); op++ {
		m.overheadByOp[op] = m.overhead.WithLabelValues(op.String())
	}
	reg.MustRegister(m.requests, m.tokens, m.duration, m.ttfb, m.overhead, m.quotaRemaining,
		m.quotaRejections, m.budgetAlerts, m.storeErrors, m.inflight, m.storeDegraded, m.storeWiped,
		m.snapshotVersion, m.upstreamFailures, m.storePersistence, m.usageEstimated,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

type childKey struct {
	entitlement, team, account string
	op                         bedrock.Operation
	code                       int
}

type requestChildren struct {
	requests prometheus.Counter
	duration prometheus.Observer
	ttfb     prometheus.Observer
}

type tokenKey struct{ entitlement, team, account, model, tier string }

type tokenChildren struct{ input, output, cacheRead, cacheWrite prometheus.Counter }

// Request is what one finished request contributes to the metrics.
type Request struct {
	Entitlement, Team, Account, Model string
	Op                                bedrock.Operation
	Code                              int
	Duration, TTFB, Overhead          time.Duration
	Usage                             bedrock.Usage
	HasUsage                          bool
	// Tier is the pricing tier the request asked for; empty means default.
	Tier string
	// Rejection is the reason a cap or rate limit refused the request (as in
	// gateway_quota_rejections_total), empty when it was admitted.
	Rejection string
	// UpstreamStatus is the status Bedrock answered with; 0 when the call
	// never got an upstream response (refused, unreachable, timed out).
	UpstreamStatus int
}

// Observer receives every request Observe records, after the Prometheus
// metrics. ObserveRequest runs on the request path: it must not block.
type Observer interface {
	ObserveRequest(Request)
}

type observerBox struct{ o Observer }

// SetObserver makes o receive every finished request from now on (nil:
// none). Set it before the listeners open, so no request is missed.
func (m *Metrics) SetObserver(o Observer) {
	if o == nil {
		m.observer.Store(nil)
		return
	}
	m.observer.Store(&observerBox{o})
}

// Observe records one finished request.
func (m *Metrics) Observe(r Request) {
	account := r.Account
	if m.dropAccount {
		account = ""
	}
	k := childKey{r.Entitlement, r.Team, account, r.Op, r.Code}
	v, ok := m.children.Load(k)
	if !ok {
		opName := r.Op.String()
		v, _ = m.children.LoadOrStore(k, &requestChildren{
			requests: m.requests.WithLabelValues(r.Entitlement, r.Team, account, opName, strconv.Itoa(r.Code)),
			duration: m.duration.WithLabelValues(r.Entitlement, opName),
			ttfb:     m.ttfb.WithLabelValues(r.Entitlement, opName),
		})
	}
	c := v.(*requestChildren)
	c.requests.Inc()
	c.duration.Observe(r.Duration.Seconds())
	if r.TTFB > 0 {
		c.ttfb.Observe(r.TTFB.Seconds())
	}
	if r.Overhead > 0 && int(r.Op) < len(m.overheadByOp) {
		m.overheadByOp[r.Op].Observe(r.Overhead.Seconds())
	}
	if r.HasUsage {
		m.AddTierTokens(r.Entitlement, r.Team, account, r.Model, r.Tier, r.Usage)
		if r.Usage.Estimated {
			m.usageEstimated.WithLabelValues(r.Entitlement).Inc()
		}
	}
	if b := m.observer.Load(); b != nil {
		b.o.ObserveRequest(r)
	}
}

// AddTokens counts tokens reported by Bedrock in the default tier.
func (m *Metrics) AddTokens(entitlement, team, account, model string, u bedrock.Usage) {
	m.AddTierTokens(entitlement, team, account, model, bedrock.TierDefault, u)
}

// AddTierTokens counts tokens reported by Bedrock in a pricing tier (empty
// means default).
func (m *Metrics) AddTierTokens(entitlement, team, account, model, tier string, u bedrock.Usage) {
	if m.dropAccount {
		account = ""
	}
	if tier == "" {
		tier = bedrock.TierDefault
	}
	k := tokenKey{entitlement, team, account, model, tier}
	v, ok := m.tokenCh.Load(k)
	if !ok {
		v, _ = m.tokenCh.LoadOrStore(k, &tokenChildren{
			input:      m.tokens.WithLabelValues(entitlement, team, account, model, "input", tier),
			output:     m.tokens.WithLabelValues(entitlement, team, account, model, "output", tier),
			cacheRead:  m.tokens.WithLabelValues(entitlement, team, account, model, "cache_read", tier),
			cacheWrite: m.tokens.WithLabelValues(entitlement, team, account, model, "cache_write", tier),
		})
	}
	c := v.(*tokenChildren)
	c.input.Add(float64(u.InputTokens))
	c.output.Add(float64(u.OutputTokens))
	c.cacheRead.Add(float64(u.CacheReadTokens))
	c.cacheWrite.Add(float64(u.CacheWriteTokens))
}

// Rejection counts a request refused by a cap or rate limit.
func (m *Metrics) Rejection(entitlement, team, account, reason string) {
	if m.dropAccount {
		account = ""
	}
	m.quotaRejections.WithLabelValues(entitlement, team, account, reason).Inc()
}

// QuotaRemaining records the remaining tokens of a cap.
func (m *Metrics) QuotaRemaining(entitlement, level, target string, remaining int64) {
	m.quotaRemaining.WithLabelValues(entitlement, level, target).Set(float64(remaining))
}

// BudgetAlert counts a crossed threshold.
func (m *Metrics) BudgetAlert(entitlement string, threshold int) {
	m.budgetAlerts.WithLabelValues(entitlement, strconv.Itoa(threshold)).Inc()
}

// StoreError counts a failed Redis operation.
func (m *Metrics) StoreError(op string) { m.storeErrors.WithLabelValues(op).Inc() }

// UpstreamFailure counts a failed upstream call (reason: unreachable, timeout, reset, client_gone).
func (m *Metrics) UpstreamFailure(reason string) { m.upstreamFailures.WithLabelValues(reason).Inc() }

// ReservationExpired counts a call settled after its reservation expired; it
// fits quota.Options.OnReservationExpired.
func (m *Metrics) ReservationExpired(entitlement string) {
	m.reservationsExpired.WithLabelValues(entitlement).Inc()
}

// RedisRoundTrip counts one command or pipeline sent to Redis.
func (m *Metrics) RedisRoundTrip() { m.redisRoundTrips.Inc() }

// Inflight returns the in-flight gauge.
func (m *Metrics) Inflight() prometheus.Gauge { return m.inflight }

// SetStoreWiped records whether the state store has lost its data.
func (m *Metrics) SetStoreWiped(wiped bool) {
	if wiped {
		m.storeWiped.Set(1)
	} else {
		m.storeWiped.Set(0)
	}
}

// SetStoreDegraded records whether the quota store is unreachable.
func (m *Metrics) SetStoreDegraded(degraded bool) {
	if degraded {
		m.storeDegraded.Set(1)
	} else {
		m.storeDegraded.Set(0)
	}
}

// SetStorePersistence records whether Redis keeps its data across a restart;
// known false removes the series (the settings could not be read).
func (m *Metrics) SetStorePersistence(known, enabled bool) {
	switch {
	case !known:
		m.storePersistence.unset()
	case enabled:
		m.storePersistence.set(1)
	default:
		m.storePersistence.set(0)
	}
}

// SetStateVersion records the snapshot version served.
func (m *Metrics) SetStateVersion(v uint64) { m.snapshotVersion.Set(float64(v)) }
