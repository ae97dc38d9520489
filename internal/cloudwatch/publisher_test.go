package cloudwatch

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/bedrock-gateway/gateway/internal/bedrock"
	"github.com/bedrock-gateway/gateway/internal/sim"
	"github.com/bedrock-gateway/gateway/internal/testutil/wait"
)

const (
	testKey    = "AKIACWPUBTEST0000001"
	testSecret = "cw-publisher-test-secret"
)

// simServer is a simulator serving CloudWatch, checking signatures; wrap,
// when set, stands in front of it (fault injection).
func simServer(t *testing.T, wrap func(http.Handler) http.Handler) (*sim.Simulator, *httptest.Server) {
	t.Helper()
	s := sim.New(sim.Options{VerifyCloudWatch: sim.NewSigV4Check(sim.SigV4Check{Service: "monitoring",
		PathPrefix: sim.CloudWatchPathPrefix, Secrets: map[string]string{testKey: testSecret}})})
	var h http.Handler = s
	if wrap != nil {
		h = wrap(s)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return s, srv
}

func testClient(t *testing.T, url, region string) *cloudwatch.Client {
	t.Helper()
	c, err := NewClient(context.Background(), ClientOptions{Region: region, Endpoint: url, MaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider(testKey, testSecret, ""),
		HTTPClient:  sim.SDKHTTPClient(nil)})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// sumOf reads one metric's Sum (and SampleCount) over the last hour.
func sumOf(t *testing.T, c *cloudwatch.Client, ns, metric string, dims ...string) (sum, count float64) {
	t.Helper()
	var d []types.Dimension
	for i := 0; i+1 < len(dims); i += 2 {
		d = append(d, types.Dimension{Name: aws.String(dims[i]), Value: aws.String(dims[i+1])})
	}
	now := time.Now()
	q := func(id, stat string) types.MetricDataQuery {
		return types.MetricDataQuery{Id: aws.String(id), MetricStat: &types.MetricStat{Period: aws.Int32(7200), Stat: aws.String(stat),
			Metric: &types.Metric{Namespace: aws.String(ns), MetricName: aws.String(metric), Dimensions: d}}}
	}
	out, err := c.GetMetricData(context.Background(), &cloudwatch.GetMetricDataInput{
		StartTime: aws.Time(now.Add(-time.Hour)), EndTime: aws.Time(now.Add(time.Hour)),
		MetricDataQueries: []types.MetricDataQuery{q("s", "Sum"), q("n", "SampleCount")},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range out.MetricDataResults {
		for _, v := range r.Values {
			if *r.Id == "s" {
				sum += v
			} else {
				count += v
			}
		}
	}
	return sum, count
}

func newPublisher(t *testing.T, c API, mod func(*Options)) *Publisher {
	t.Helper()
	o := Options{Client: c, Namespace: "BedrockGateway", Interval: time.Hour, Backoff: time.Millisecond}
	if mod != nil {
		mod(&o)
	}
	p, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func ok(ent, team string, in, out int64, op bedrock.Operation) Call {
	return Call{Entitlement: ent, Team: team, Account: "222222222222", Op: op, Code: 200, UpstreamStatus: 200,
		Duration: 40 * time.Millisecond, TTFB: 10 * time.Millisecond, HasUsage: true,
		Usage: bedrock.Usage{InputTokens: in, OutputTokens: out}}
}

// TestClassification: each kind of finished request lands in its metrics.
func TestClassification(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		req  Call
		want map[metricID]float64 // metric -> Sum; every other metric has no datum
	}{
		{"invocation", ok("chat", "ml", 10, 5, bedrock.OpConverse),
			map[metricID]float64{mInvocations: 1, mInput: 10, mOutput: 5, mLatency: 40}},
		{"stream", ok("chat", "ml", 3, 2, bedrock.OpConverseStream),
			map[metricID]float64{mInvocations: 1, mInput: 3, mOutput: 2, mLatency: 40, mTTFT: 10}},
		{"cache tokens", Call{Entitlement: "chat", Team: "ml", Op: bedrock.OpInvokeModel, Code: 200, UpstreamStatus: 200, HasUsage: true,
			Usage: bedrock.Usage{InputTokens: 1, CacheReadTokens: 7, CacheWriteTokens: 9}},
			map[metricID]float64{mInvocations: 1, mInput: 1, mOutput: 0, mCacheRead: 7, mCacheWrite: 9, mLatency: 0}},
		{"upstream throttle", Call{Entitlement: "chat", Team: "ml", Op: bedrock.OpConverse, Code: 429, UpstreamStatus: 429},
			map[metricID]float64{mThrottles: 1}},
		{"gateway rate limit", Call{Entitlement: "chat", Team: "ml", Op: bedrock.OpConverse, Code: 429, Rejection: "requests_per_minute"},
			map[metricID]float64{mGatewayThrottles: 1, mQuotaRejections: 1}},
		{"monthly cap", Call{Entitlement: "chat", Team: "ml", Op: bedrock.OpConverse, Code: 400, Rejection: "monthly_cap_account"},
			map[metricID]float64{mQuotaRejections: 1}},
		{"store unavailable", Call{Entitlement: "chat", Team: "ml", Op: bedrock.OpConverse, Code: 503, Rejection: "store_unavailable"},
			map[metricID]float64{mQuotaRejections: 1, mServerErrors: 1}},
		{"upstream validation error", Call{Entitlement: "chat", Team: "ml", Op: bedrock.OpConverse, Code: 400, UpstreamStatus: 400},
			map[metricID]float64{mClientErrors: 1}},
		{"upstream 500", Call{Entitlement: "chat", Team: "ml", Op: bedrock.OpConverse, Code: 500, UpstreamStatus: 500},
			map[metricID]float64{mServerErrors: 1}},
		{"unreachable", Call{Entitlement: "chat", Team: "ml", Op: bedrock.OpConverse, Code: 503},
			map[metricID]float64{mServerErrors: 1}},
		{"no entitlement", Call{Op: bedrock.OpConverse, Code: 403}, nil},
		{"count tokens", Call{Entitlement: "chat", Team: "ml", Op: bedrock.OpCountTokens, Code: 200, UpstreamStatus: 200, HasUsage: true,
			Usage: bedrock.Usage{InputTokens: 5}}, map[metricID]float64{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := newPublisher(t, fakeAPI{}, nil)
			p.Observe(tc.req)
			got := map[string]float64{}
			for _, d := range p.datums(p.agg, time.Now()) {
				if len(d.Dimensions) == 2 { // the (Entitlement, Team) set
					got[*d.MetricName] = *d.StatisticValues.Sum
				}
			}
			want := map[string]float64{}
			for m, v := range tc.want {
				want[metricNames[m]] = v
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("got %v, want %v", got, want)
			}
		})
	}
}

type fakeAPI struct{}

func (fakeAPI) PutMetricData(context.Context, *cloudwatch.PutMetricDataInput, ...func(*cloudwatch.Options)) (*cloudwatch.PutMetricDataOutput, error) {
	return &cloudwatch.PutMetricDataOutput{}, nil
}

// TestPublishRoundTrip: statistics from concurrent requests, published in
// small batches through the real SDK client, read back with GetMetricData
// per dimension set, add up to what was observed.
func TestPublishRoundTrip(t *testing.T) {
	t.Parallel()
	s, srv := simServer(t, nil)
	c := testClient(t, srv.URL, "eu-central-1")
	p := newPublisher(t, c, func(o *Options) { o.BatchSize = 7; o.AccountDimension = true })
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 50 {
				r := ok("chat", []string{"ml", "web"}[i%2], int64(j), 2, bedrock.OpConverse)
				r.Account = fmt.Sprintf("%012d", 200000000000+i)
				p.Observe(r)
			}
		})
	}
	wg.Wait()
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		metric    string
		dims      []string
		sum, n    float64
		published bool
	}{
		{InputTokenCount, []string{DimEntitlement, "chat"}, 8 * 1225, 400, true},
		{InputTokenCount, []string{DimTeam, "ml"}, 4 * 1225, 200, true},
		{Invocations, []string{DimEntitlement, "chat", DimTeam, "web"}, 200, 200, true},
		{OutputTokenCount, []string{DimEntitlement, "chat", DimAccount, "200000000003"}, 100, 50, true},
		{OutputTokenCount, []string{DimAccount, "200000000003"}, 100, 50, true},
		{CacheReadInputTokenCount, []string{DimEntitlement, "chat"}, 0, 0, false},
	}
	for _, tc := range tests {
		sum, n := sumOf(t, c, "BedrockGateway", tc.metric, tc.dims...)
		if sum != tc.sum || n != tc.n {
			t.Errorf("%s %v: sum %v count %v, want %v %v", tc.metric, tc.dims, sum, n, tc.sum, tc.n)
		}
	}
	calls := s.CloudWatchCalls()["PutMetricData"]
	published := testutil.ToFloat64(p.published)
	if calls < 2 || published == 0 || float64(calls) < published/7 || testutil.ToFloat64(p.dropped) != 0 {
		t.Fatalf("%d PutMetricData calls for %v datums (batches of 7), %v dropped", calls, published, testutil.ToFloat64(p.dropped))
	}
}

// TestRetryThenSuccess: failed calls are retried with backoff and the data
// arrives once; each failure is counted.
func TestRetryThenSuccess(t *testing.T) {
	t.Parallel()
	var fails atomic.Int32
	fails.Store(3)
	_, srv := simServer(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if fails.Add(-1) >= 0 {
				r.Header.Set(sim.HeaderFault, sim.FaultUnavailable) // the simulator's own fault, in CloudWatch's shape
			}
			h.ServeHTTP(w, r)
		})
	})
	c := testClient(t, srv.URL, "us-east-1")
	p := newPublisher(t, c, nil)
	p.Observe(ok("chat", "ml", 10, 5, bedrock.OpConverse))
	if err := p.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if sum, _ := sumOf(t, c, "BedrockGateway", InputTokenCount, DimTeam, "ml"); sum != 10 {
		t.Fatalf("sum %v, want 10", sum)
	}
	if f, d := testutil.ToFloat64(p.failures), testutil.ToFloat64(p.dropped); f != 3 || d != 0 {
		t.Fatalf("failures %v dropped %v, want 3 and 0", f, d)
	}
}

// TestDropAfterAttempts: an endpoint that always fails costs MaxAttempts
// tries per batch, then the batch is dropped and counted; requests keep being
// observed meanwhile.
func TestDropAfterAttempts(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusInternalServerError)
	}))
	t.Cleanup(srv.Close)
	c := testClient(t, srv.URL, "us-east-1")
	p := newPublisher(t, c, func(o *Options) { o.MaxAttempts = 3; o.BatchSize = 2 })
	p.Observe(ok("chat", "ml", 10, 5, bedrock.OpConverse)) // 4 metrics x 3 dimension sets = 12 datums: 6 batches
	if err := p.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if d, f, n := testutil.ToFloat64(p.dropped), testutil.ToFloat64(p.failures), calls.Load(); d != 12 || f != 18 || n != 18 {
		t.Fatalf("dropped %v failures %v calls %d, want 12, 18, 18", d, f, n)
	}
	// A refusal of the data itself is not retried.
	_, sim400 := simServer(t, nil)
	bad := newPublisher(t, testClient(t, sim400.URL, "us-east-1"), nil)
	bad.opts.Namespace = "AWS/Bedrock" // CloudWatch refuses AWS/ namespaces
	bad.Observe(ok("chat", "ml", 1, 1, bedrock.OpConverse))
	if err := bad.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if f, d := testutil.ToFloat64(bad.failures), testutil.ToFloat64(bad.dropped); f != 1 || d != 12 {
		t.Fatalf("refused: failures %v dropped %v, want 1 and 12", f, d)
	}
}

// TestPendingBound: with CloudWatch unreachable and flushes cut short, what
// is pending stays under MaxPending, the oldest dropped and counted.
func TestPendingBound(t *testing.T) {
	t.Parallel()
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-block:
		case <-r.Context().Done():
		}
		w.WriteHeader(http.StatusInternalServerError)
	}))
	t.Cleanup(func() { close(block); srv.Close() })
	c := testClient(t, srv.URL, "us-east-1")
	p := newPublisher(t, c, func(o *Options) { o.MaxPending = 20 })
	for i := range 4 {
		p.Observe(ok(fmt.Sprint("e", i), "ml", 10, 5, bedrock.OpConverse)) // 12 datums each
		ctx, cancel := context.WithCancel(context.Background())
		cancel() // the flush gives up at once: everything stays pending
		if err := p.Flush(ctx); err == nil {
			t.Fatal("flush with a cancelled context succeeded")
		}
	}
	p.sendMu.Lock()
	pending := p.pendingLen()
	p.sendMu.Unlock()
	if pending > 20 || testutil.ToFloat64(p.dropped) != float64(48-pending) {
		t.Fatalf("pending %d dropped %v", pending, testutil.ToFloat64(p.dropped))
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = p.Close(ctx) // at shutdown what cannot be sent is dropped and counted
	if d := testutil.ToFloat64(p.dropped); d != 48 {
		t.Fatalf("dropped %v after Close, want 48", d)
	}
}

// TestRunPublishesPeriodically: Run flushes every Interval; Close stops it
// and flushes the rest.
func TestRunPublishesPeriodically(t *testing.T) {
	t.Parallel()
	s, srv := simServer(t, nil)
	c := testClient(t, srv.URL, "us-east-1")
	p := newPublisher(t, c, func(o *Options) { o.Interval = 10 * time.Millisecond })
	done := make(chan struct{})
	go func() { defer close(done); p.Run(context.Background()) }()
	p.Observe(ok("chat", "ml", 10, 5, bedrock.OpConverse))
	wait.For(t, "the first periodic PutMetricData", 30*time.Second, func() bool { return s.CloudWatchCalls()["PutMetricData"] > 0 })
	p.Observe(ok("chat", "ml", 1, 1, bedrock.OpConverse))
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	<-done
	if sum, n := sumOf(t, c, "BedrockGateway", InputTokenCount, DimEntitlement, "chat"); sum != 11 || n != 2 {
		t.Fatalf("sum %v count %v, want 11 and 2", sum, n)
	}
}

// BenchmarkObserve is the publisher's cost on the request path: one lock and
// one map lookup, no allocation once the (entitlement, team) is known.
func BenchmarkObserve(b *testing.B) {
	p, err := New(Options{Client: fakeAPI{}, Namespace: "BedrockGateway"})
	if err != nil {
		b.Fatal(err)
	}
	r := ok("chat", "ml", 10, 5, bedrock.OpConverseStream)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			p.Observe(r)
		}
	})
}

// TestObserveAllocations: not parallel, since testing.AllocsPerRun counts
// every goroutine's allocations.
func TestObserveAllocations(t *testing.T) {
	p := newPublisher(t, fakeAPI{}, nil)
	r := ok("chat", "ml", 10, 5, bedrock.OpConverse)
	p.Observe(r)
	if n := testing.AllocsPerRun(100, func() { p.Observe(r) }); n != 0 {
		t.Fatalf("Observe allocates %v times per call", n)
	}
}

// TestClientEndpointFromEnvironment: without --cloudwatch-endpoint the client
// follows AWS_ENDPOINT_URL_CLOUDWATCH (then AWS_ENDPOINT_URL), as the SDK's
// config loader reads them. Not parallel: it sets the process environment.
func TestClientEndpointFromEnvironment(t *testing.T) {
	s, srv := simServer(t, nil)
	for _, name := range []string{"AWS_ENDPOINT_URL_CLOUDWATCH", "AWS_ENDPOINT_URL"} {
		t.Run(name, func(t *testing.T) {
			t.Setenv("AWS_ENDPOINT_URL_CLOUDWATCH", "")
			t.Setenv("AWS_ENDPOINT_URL", "")
			t.Setenv(name, srv.URL)
			before := s.CloudWatchCalls()["PutMetricData"]
			c := testClient(t, "", "us-east-1")
			p := newPublisher(t, c, nil)
			p.Observe(ok("chat", "ml", 1, 1, bedrock.OpConverse))
			if err := p.Flush(context.Background()); err != nil {
				t.Fatal(err)
			}
			if got := s.CloudWatchCalls()["PutMetricData"]; got != before+1 || testutil.ToFloat64(p.dropped) != 0 {
				t.Fatalf("the simulator saw %d calls (before %d); dropped %v", got, before, testutil.ToFloat64(p.dropped))
			}
		})
	}
}
