// Package cloudwatch publishes the gateway's per-entitlement and per-team
// metrics to Amazon CloudWatch (--cloudwatch-namespace): every finished
// request is folded into statistic sets in memory (metering's Observer, fed
// from the same place as the Prometheus metrics), and every interval, and once
// more on shutdown, the sets go out through PutMetricData in batches. Nothing
// on the request path waits for CloudWatch. The package also reads Bedrock's
// own AWS/Bedrock metrics for `gateway usage reconcile` (reconcile.go).
package cloudwatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/bedrock-gateway/gateway/internal/bedrock"
)

// The metric names the publisher emits. They follow Bedrock's own AWS/Bedrock
// names where one exists, so one dashboard reads both.
const (
	// Invocations counts the calls Bedrock answered and the gateway metered
	// (the ledger's requests).
	Invocations = "Invocations"
	// InvocationClientErrors counts calls answered with a 4xx other than a
	// throttle or a quota refusal (Bedrock's or the gateway's own, such as
	// AccessDeniedException for an operation the entitlement does not allow).
	InvocationClientErrors = "InvocationClientErrors"
	// InvocationServerErrors counts calls answered with a 5xx (Bedrock's, an
	// unreachable upstream, the quota store unavailable).
	InvocationServerErrors = "InvocationServerErrors"
	// InvocationThrottles counts calls Bedrock throttled (429 from upstream).
	InvocationThrottles = "InvocationThrottles"
	// GatewayThrottles counts calls the gateway's own rate limits refused.
	GatewayThrottles = "GatewayThrottles"
	// QuotaRejections counts calls a cap or rate limit refused, or the quota
	// store could not decide (gateway_quota_rejections_total).
	QuotaRejections           = "QuotaRejections"
	InputTokenCount           = "InputTokenCount"
	OutputTokenCount          = "OutputTokenCount"
	CacheReadInputTokenCount  = "CacheReadInputTokenCount"
	CacheWriteInputTokenCount = "CacheWriteInputTokenCount"
	// InvocationLatency is the whole call in milliseconds, per Invocation.
	InvocationLatency = "InvocationLatency"
	// TimeToFirstToken is the time to the first byte of a stream, in
	// milliseconds, per streaming Invocation.
	TimeToFirstToken = "TimeToFirstToken"
)

// The dimension names.
const (
	DimEntitlement = "Entitlement"
	DimTeam        = "Team"
	DimAccount     = "Account"
)

// NoTeam is the Team dimension's value for an account without a team
// (CloudWatch refuses empty dimension values).
const NoTeam = "(none)"

type metricID int

const (
	mInvocations metricID = iota
	mClientErrors
	mServerErrors
	mThrottles
	mGatewayThrottles
	mQuotaRejections
	mInput
	mOutput
	mCacheRead
	mCacheWrite
	mLatency
	mTTFT
	numMetrics
)

var metricNames = [numMetrics]string{
	Invocations, InvocationClientErrors, InvocationServerErrors, InvocationThrottles, GatewayThrottles,
	QuotaRejections, InputTokenCount, OutputTokenCount, CacheReadInputTokenCount, CacheWriteInputTokenCount,
	InvocationLatency, TimeToFirstToken,
}

// MetricNames lists every metric the publisher emits.
func MetricNames() []string { return slices.Clone(metricNames[:]) }

// DimensionSets lists the dimension sets every metric is published with;
// account adds the Account ones (--cloudwatch-account-dimension).
func DimensionSets(account bool) [][]string {
	sets := [][]string{{DimEntitlement}, {DimTeam}, {DimEntitlement, DimTeam}}
	if account {
		sets = append(sets, []string{DimAccount}, []string{DimEntitlement, DimAccount})
	}
	return sets
}

func (m metricID) unit() types.StandardUnit {
	if m == mLatency || m == mTTFT {
		return types.StandardUnitMilliseconds
	}
	return types.StandardUnitCount
}

// stat is a statistic set being accumulated.
type stat struct{ n, sum, min, max float64 }

func (s *stat) add(v float64) { s.merge(stat{1, v, v, v}) }

func (s *stat) merge(o stat) {
	if o.n == 0 {
		return
	}
	if s.n == 0 {
		*s = o
		return
	}
	s.n += o.n
	s.sum += o.sum
	s.min = min(s.min, o.min)
	s.max = max(s.max, o.max)
}

type aggregate [numMetrics]stat

func (a *aggregate) merge(o *aggregate) {
	for i := range a {
		a[i].merge(o[i])
	}
}

type key struct{ entitlement, team, account string }

// API is the part of the CloudWatch client the publisher uses.
type API interface {
	PutMetricData(ctx context.Context, in *cloudwatch.PutMetricDataInput, opts ...func(*cloudwatch.Options)) (*cloudwatch.PutMetricDataOutput, error)
}

// Options configure a Publisher.
type Options struct {
	Client API
	// Namespace is the CloudWatch namespace; required (the server builds no
	// publisher when --cloudwatch-namespace is empty).
	Namespace string
	// Interval is how often the statistics are sent; 0 means one minute.
	Interval time.Duration
	// AccountDimension also publishes per Account and per (Entitlement,
	// Account): a metric per account, which costs.
	AccountDimension bool
	// BatchSize is the most datums per PutMetricData call; 0 means 1000
	// (CloudWatch's limit).
	BatchSize int
	// MaxAttempts is how often one batch is tried before it is dropped; 0
	// means 5.
	MaxAttempts int
	// Backoff is the wait before the first retry, doubled each time up to
	// Interval; 0 means one second.
	Backoff time.Duration
	// MaxPending bounds the datums held for sending (retries included); the
	// oldest beyond it are dropped. 0 means 100,000.
	MaxPending int
	// CallTimeout bounds one PutMetricData call; 0 means 30 seconds.
	CallTimeout time.Duration
	Logger      *slog.Logger
	// Now is the clock of the datums' timestamps; nil means time.Now.
	Now func() time.Time
}

// Publisher aggregates requests and publishes them. Its methods are safe for
// concurrent use; it is a prometheus.Collector of its own counters.
type Publisher struct {
	opts Options
	log  *slog.Logger

	mu  sync.Mutex
	agg map[key]*aggregate

	sendMu  sync.Mutex // one flush at a time; guards pending
	pending []*batch

	runMu   sync.Mutex
	stopped bool
	stop    chan struct{} // closed by Close
	runDone chan struct{} // closed when Run returns; nil when Run never ran

	published, dropped, failures prometheus.Counter
}

type batch struct {
	data     []types.MetricDatum
	attempts int
}

// New returns a Publisher; Run sends periodically, Close sends the rest.
func New(opts Options) (*Publisher, error) {
	if opts.Client == nil {
		return nil, errors.New("cloudwatch publisher: no client")
	}
	if opts.Namespace == "" || len(opts.Namespace) > 255 || strings.HasPrefix(opts.Namespace, "AWS/") {
		return nil, fmt.Errorf("cloudwatch publisher: namespace %q: 1-255 characters, not starting with AWS/", opts.Namespace)
	}
	if opts.Interval <= 0 {
		opts.Interval = time.Minute
	}
	if opts.BatchSize <= 0 || opts.BatchSize > 1000 {
		opts.BatchSize = 1000
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = 5
	}
	if opts.Backoff <= 0 {
		opts.Backoff = time.Second
	}
	if opts.MaxPending <= 0 {
		opts.MaxPending = 100_000
	}
	if opts.CallTimeout <= 0 {
		opts.CallTimeout = 30 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Publisher{
		opts: opts, log: log, agg: make(map[key]*aggregate), stop: make(chan struct{}),
		published: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gateway_cloudwatch_datums_published_total", Help: "CloudWatch datums (statistic sets) this replica published.",
		}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gateway_cloudwatch_datums_dropped_total",
			Help: "CloudWatch datums dropped unsent: refused, failed after every retry, over the pending bound, or left at shutdown.",
		}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gateway_cloudwatch_put_errors_total", Help: "PutMetricData calls that failed (each retry counts).",
		}),
	}, nil
}

// Describe implements prometheus.Collector.
func (p *Publisher) Describe(ch chan<- *prometheus.Desc) {
	p.published.Describe(ch)
	p.dropped.Describe(ch)
	p.failures.Describe(ch)
}

// Collect implements prometheus.Collector.
func (p *Publisher) Collect(ch chan<- prometheus.Metric) {
	p.published.Collect(ch)
	p.dropped.Collect(ch)
	p.failures.Collect(ch)
}

// rateLimitReasons are the rejection reasons of the per-minute rate limits.
var rateLimitReasons = map[string]bool{"requests_per_minute": true, "tokens_per_minute": true}

// Call is what one finished request contributes: the figures metering's
// Prometheus metrics get (the server hands them over from its
// metering.Observer, so this package stays free of the server side).
type Call struct {
	Entitlement, Team, Account string
	Op                         bedrock.Operation
	// Code is the status reported (499: the client went away);
	// UpstreamStatus Bedrock's, 0 when none came.
	Code, UpstreamStatus int
	// Rejection is the cap or rate-limit reason that refused the call, empty
	// when it was admitted.
	Rejection      string
	Duration, TTFB time.Duration
	Usage          bedrock.Usage
	HasUsage       bool
}

// Observe folds one finished request into the statistics. Requests
// without an entitlement (denied before one was resolved) are not
// published: they have no dimension.
func (p *Publisher) Observe(r Call) {
	if r.Entitlement == "" {
		return
	}
	k := key{entitlement: r.Entitlement, team: r.Team}
	if k.team == "" {
		k.team = NoTeam
	}
	if p.opts.AccountDimension {
		k.account = r.Account
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	a := p.agg[k]
	if a == nil {
		a = &aggregate{}
		p.agg[k] = a
	}
	switch {
	case r.Rejection != "":
		a[mQuotaRejections].add(1)
		if rateLimitReasons[r.Rejection] {
			a[mGatewayThrottles].add(1)
		}
		if r.Code >= 500 {
			a[mServerErrors].add(1) // the quota store could not decide: a 5xx all the same
		}
	case r.UpstreamStatus == 429:
		a[mThrottles].add(1)
	case r.Code >= 500:
		a[mServerErrors].add(1)
	case r.Code >= 400 && r.Code != 429:
		a[mClientErrors].add(1)
	}
	if !r.HasUsage || !r.Op.Generates() {
		return
	}
	a[mInvocations].add(1)
	a[mInput].add(float64(r.Usage.InputTokens))
	a[mOutput].add(float64(r.Usage.OutputTokens))
	a[mCacheRead].add(float64(r.Usage.CacheReadTokens))
	a[mCacheWrite].add(float64(r.Usage.CacheWriteTokens))
	a[mLatency].add(float64(r.Duration) / float64(time.Millisecond))
	if r.TTFB > 0 && r.Op.Streaming() {
		a[mTTFT].add(float64(r.TTFB) / float64(time.Millisecond))
	}
}

// Run publishes every Interval until ctx ends or Close is called (once: a
// second Run, or one after Close, returns at once).
func (p *Publisher) Run(ctx context.Context) {
	p.runMu.Lock()
	if p.stopped || p.runDone != nil {
		p.runMu.Unlock()
		return
	}
	done := make(chan struct{})
	p.runDone = done
	p.runMu.Unlock()
	defer close(done)
	t := time.NewTicker(p.opts.Interval)
	defer t.Stop()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-p.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			// A call under way when Close comes is finished, not cut: cut,
			// CloudWatch may have stored it all the same, and sending it again
			// would count it twice. Only the waits between retries end early.
			if err := p.flush(ctx, context.WithoutCancel(ctx)); err != nil && ctx.Err() == nil {
				p.log.Warn("publishing CloudWatch metrics", "error", err)
			}
		}
	}
}

// Close stops Run and publishes what is left, retrying until ctx ends; what
// is still unsent then is dropped and counted.
func (p *Publisher) Close(ctx context.Context) error {
	p.runMu.Lock()
	if !p.stopped {
		p.stopped = true
		close(p.stop)
	}
	done := p.runDone
	p.runMu.Unlock()
	if done != nil {
		<-done
	}
	err := p.Flush(ctx)
	p.sendMu.Lock()
	defer p.sendMu.Unlock()
	if n := p.pendingLen(); n > 0 {
		p.dropped.Add(float64(n))
		p.log.Warn("CloudWatch metrics dropped at shutdown", "datums", n, "error", err)
		p.pending = nil
	}
	return err
}

// Flush takes the statistics gathered so far and sends them with whatever
// earlier flushes left pending. It returns ctx's error when ctx ended first
// (what is unsent stays pending) and nil otherwise: batches that failed every
// attempt are dropped and counted, not returned.
func (p *Publisher) Flush(ctx context.Context) error { return p.flush(ctx, ctx) }

// flush is Flush with the retry waits bounded by ctx and each call by
// callCtx (and CallTimeout).
func (p *Publisher) flush(ctx, callCtx context.Context) error {
	p.mu.Lock()
	agg := p.agg
	p.agg = make(map[key]*aggregate, len(agg))
	p.mu.Unlock()
	data := p.datums(agg, p.opts.Now())

	p.sendMu.Lock()
	defer p.sendMu.Unlock()
	for len(data) > 0 {
		n := min(len(data), p.opts.BatchSize)
		p.pending = append(p.pending, &batch{data: data[:n:n]})
		data = data[n:]
	}
	for p.pendingLen() > p.opts.MaxPending {
		p.dropped.Add(float64(len(p.pending[0].data)))
		p.log.Warn("CloudWatch metrics dropped: too many pending", "datums", len(p.pending[0].data))
		p.pending = p.pending[1:]
	}
	for len(p.pending) > 0 {
		b := p.pending[0]
		if ctx.Err() != nil {
			return ctx.Err()
		}
		err := p.put(callCtx, b.data)
		if err == nil {
			p.published.Add(float64(len(b.data)))
			p.pending = p.pending[1:]
			continue
		}
		if callCtx.Err() != nil {
			return callCtx.Err()
		}
		p.failures.Inc()
		b.attempts++
		if b.attempts >= p.opts.MaxAttempts || !retryable(err) {
			p.dropped.Add(float64(len(b.data)))
			p.log.Warn("CloudWatch metrics dropped", "datums", len(b.data), "attempts", b.attempts, "error", err)
			p.pending = p.pending[1:]
			continue
		}
		wait := min(p.opts.Backoff<<(b.attempts-1), p.opts.Interval)
		p.log.Debug("PutMetricData failed, retrying", "attempt", b.attempts, "wait", wait, "error", err)
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return ctx.Err()
		case <-timer.C:
		}
	}
	return nil
}

func (p *Publisher) pendingLen() int {
	n := 0
	for _, b := range p.pending {
		n += len(b.data)
	}
	return n
}

func (p *Publisher) put(ctx context.Context, data []types.MetricDatum) error {
	ctx, cancel := context.WithTimeout(ctx, p.opts.CallTimeout)
	defer cancel()
	_, err := p.opts.Client.PutMetricData(ctx, &cloudwatch.PutMetricDataInput{Namespace: aws.String(p.opts.Namespace), MetricData: data})
	if err != nil {
		return fmt.Errorf("PutMetricData: %w", err)
	}
	return nil
}

// retryable: everything but a refusal of the request itself, which would be
// refused again.
func retryable(err error) bool {
	var bad *types.InvalidParameterValueException
	var combo *types.InvalidParameterCombinationException
	var missing *types.MissingRequiredParameterException
	return !errors.As(err, &bad) && !errors.As(err, &combo) && !errors.As(err, &missing)
}

// datums turns the statistics of one interval into statistic sets, one per
// metric and dimension set, sorted so batches are reproducible.
func (p *Publisher) datums(agg map[key]*aggregate, now time.Time) []types.MetricDatum {
	if len(agg) == 0 {
		return nil
	}
	type dimKey struct{ set, entitlement, team, account string }
	rolled := map[dimKey]*aggregate{}
	for k, a := range agg {
		for _, set := range DimensionSets(p.opts.AccountDimension) {
			dk := dimKey{set: strings.Join(set, ",")}
			for _, d := range set {
				switch d {
				case DimEntitlement:
					dk.entitlement = k.entitlement
				case DimTeam:
					dk.team = k.team
				case DimAccount:
					dk.account = k.account
				}
			}
			if slices.Contains(set, DimAccount) && k.account == "" {
				continue
			}
			r := rolled[dk]
			if r == nil {
				r = &aggregate{}
				rolled[dk] = r
			}
			r.merge(a)
		}
	}
	keys := make([]dimKey, 0, len(rolled))
	for k := range rolled {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b dimKey) int {
		return strings.Compare(a.set+"\x00"+a.entitlement+"\x00"+a.team+"\x00"+a.account, b.set+"\x00"+b.entitlement+"\x00"+b.team+"\x00"+b.account)
	})
	ts := aws.Time(now)
	var out []types.MetricDatum
	for _, dk := range keys {
		var dims []types.Dimension
		add := func(name, value string) {
			if value != "" {
				dims = append(dims, types.Dimension{Name: aws.String(name), Value: aws.String(value)})
			}
		}
		add(DimEntitlement, dk.entitlement)
		add(DimTeam, dk.team)
		add(DimAccount, dk.account)
		a := rolled[dk]
		for m := range numMetrics {
			st := a[m]
			if st.n == 0 || (m == mCacheRead || m == mCacheWrite) && st.sum == 0 {
				continue // nothing happened (and no cache in use): no datum, no cost
			}
			out = append(out, types.MetricDatum{
				MetricName: aws.String(metricNames[m]), Dimensions: dims, Timestamp: ts, Unit: m.unit(),
				StatisticValues: &types.StatisticSet{SampleCount: aws.Float64(st.n), Sum: aws.Float64(st.sum), Minimum: aws.Float64(st.min), Maximum: aws.Float64(st.max)},
			})
		}
	}
	return out
}
