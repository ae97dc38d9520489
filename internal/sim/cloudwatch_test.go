package sim

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	brtypes "github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

const (
	cwTestKey    = "AKIACWSIMTEST0000001"
	cwTestSecret = "cw-sim-test-secret"
)

func cwServer(t *testing.T) (*Simulator, *httptest.Server) {
	t.Helper()
	s := New(Options{
		VerifyCloudWatch: NewSigV4Check(SigV4Check{Service: "monitoring", PathPrefix: CloudWatchPathPrefix,
			Secrets: map[string]string{cwTestKey: cwTestSecret}}),
	})
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return s, srv
}

func cwClient(srv *httptest.Server, region, secret string, opts ...func(*cloudwatch.Options)) *cloudwatch.Client {
	return cloudwatch.New(cloudwatch.Options{
		BaseEndpoint: aws.String(srv.URL),
		Region:       region,
		Credentials:  credentials.NewStaticCredentialsProvider(cwTestKey, secret, ""),
		HTTPClient:   SDKHTTPClient(srv.Client()),
		Retryer:      aws.NopRetryer{},
	}, opts...)
}

func dims(kv ...string) []types.Dimension {
	var out []types.Dimension
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, types.Dimension{Name: aws.String(kv[i]), Value: aws.String(kv[i+1])})
	}
	return out
}

func statQuery(id, ns, name, stat string, period int32, d []types.Dimension) types.MetricDataQuery {
	return types.MetricDataQuery{Id: aws.String(id), MetricStat: &types.MetricStat{
		Metric: &types.Metric{Namespace: aws.String(ns), MetricName: aws.String(name), Dimensions: d},
		Period: aws.Int32(period), Stat: aws.String(stat),
	}}
}

func TestCloudWatchRoundTrip(t *testing.T) {
	t.Parallel()
	_, srv := cwServer(t)
	ctx := context.Background()
	c := cwClient(srv, "eu-west-1", cwTestSecret)
	now := time.Now().UTC().Truncate(time.Minute)
	t0 := now.Add(-10 * time.Minute)
	_, err := c.PutMetricData(ctx, &cloudwatch.PutMetricDataInput{
		Namespace: aws.String("BedrockGateway"),
		MetricData: []types.MetricDatum{
			{MetricName: aws.String("Invocations"), Dimensions: dims("Team", "ml", "Entitlement", "chat"), Timestamp: aws.Time(t0),
				StatisticValues: &types.StatisticSet{SampleCount: aws.Float64(3), Sum: aws.Float64(3), Minimum: aws.Float64(1), Maximum: aws.Float64(1)}, Unit: types.StandardUnitCount},
			{MetricName: aws.String("Invocations"), Dimensions: dims("Entitlement", "chat", "Team", "ml"), Timestamp: aws.Time(t0.Add(30 * time.Second)),
				Value: aws.Float64(2), Unit: types.StandardUnitCount},
			{MetricName: aws.String("Invocations"), Dimensions: dims("Entitlement", "chat", "Team", "ml"), Timestamp: aws.Time(t0.Add(2 * time.Minute)),
				Values: []float64{5, 7}, Counts: []float64{1, 2}, Unit: types.StandardUnitCount},
			{MetricName: aws.String("Invocations"), Dimensions: dims("Entitlement", "chat"), Timestamp: aws.Time(t0), Value: aws.Float64(100)},
		},
	})
	if err != nil {
		t.Fatalf("PutMetricData: %v", err)
	}
	d := dims("Entitlement", "chat", "Team", "ml")
	tests := []struct {
		stat   string
		period int32
		want   []float64 // descending by time
	}{
		{"Sum", 60, []float64{19, 5}},
		{"SampleCount", 60, []float64{3, 4}},
		{"Maximum", 60, []float64{7, 2}},
		{"Minimum", 60, []float64{5, 1}},
		{"Sum", 3600, []float64{24}},
		{"Average", 3600, []float64{24.0 / 7}},
	}
	for _, tc := range tests {
		out, err := c.GetMetricData(ctx, &cloudwatch.GetMetricDataInput{
			StartTime: aws.Time(t0), EndTime: aws.Time(now),
			MetricDataQueries: []types.MetricDataQuery{statQuery("q", "BedrockGateway", "Invocations", tc.stat, tc.period, d)},
		})
		if err != nil {
			t.Fatalf("%s/%d: %v", tc.stat, tc.period, err)
		}
		got := out.MetricDataResults[0].Values
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("%s/%d = %v, want %v", tc.stat, tc.period, got, tc.want)
		}
		if out.MetricDataResults[0].StatusCode != types.StatusCodeComplete {
			t.Errorf("status %s", out.MetricDataResults[0].StatusCode)
		}
	}
	// CloudWatch is regional: another region sees nothing.
	other := cwClient(srv, "us-west-2", cwTestSecret)
	out, err := other.GetMetricData(ctx, &cloudwatch.GetMetricDataInput{
		StartTime: aws.Time(t0), EndTime: aws.Time(now),
		MetricDataQueries: []types.MetricDataQuery{statQuery("q", "BedrockGateway", "Invocations", "Sum", 60, d)},
	})
	if err != nil || len(out.MetricDataResults[0].Values) != 0 {
		t.Fatalf("other region: %v %v", out, err)
	}
	lm, err := c.ListMetrics(ctx, &cloudwatch.ListMetricsInput{Namespace: aws.String("BedrockGateway"),
		Dimensions: []types.DimensionFilter{{Name: aws.String("Team")}}})
	if err != nil || len(lm.Metrics) != 1 || len(lm.Metrics[0].Dimensions) != 2 {
		t.Fatalf("ListMetrics: %+v %v", lm, err)
	}
}

func TestCloudWatchPagination(t *testing.T) {
	t.Parallel()
	_, srv := cwServer(t)
	ctx := context.Background()
	c := cwClient(srv, "us-east-1", cwTestSecret)
	now := time.Now().UTC().Truncate(time.Minute)
	var data []types.MetricDatum
	for i := range 30 {
		data = append(data, types.MetricDatum{MetricName: aws.String("M"), Timestamp: aws.Time(now.Add(-time.Duration(i+1) * time.Minute)), Value: aws.Float64(float64(i))})
	}
	for i := range 520 {
		data = append(data, types.MetricDatum{MetricName: aws.String("N"), Dimensions: dims("I", fmt.Sprint(i)), Value: aws.Float64(1)})
	}
	if _, err := c.PutMetricData(ctx, &cloudwatch.PutMetricDataInput{Namespace: aws.String("P"), MetricData: data}); err != nil {
		t.Fatal(err)
	}
	p := cloudwatch.NewGetMetricDataPaginator(c, &cloudwatch.GetMetricDataInput{
		StartTime: aws.Time(now.Add(-time.Hour)), EndTime: aws.Time(now), MaxDatapoints: aws.Int32(7),
		ScanBy:            types.ScanByTimestampAscending,
		MetricDataQueries: []types.MetricDataQuery{statQuery("a", "P", "M", "Sum", 60, nil), statQuery("b", "P", "M", "Maximum", 120, nil)},
	})
	var pages int
	var sumA, sumB float64
	var na, nb int
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, r := range out.MetricDataResults {
			for _, v := range r.Values {
				if *r.Id == "a" {
					sumA += v
					na++
				} else {
					sumB += v
					nb++
				}
			}
		}
	}
	if na != 30 || sumA != 435 || nb != 15 || pages != 7 { // 45 points, 7 a page
		t.Fatalf("pages %d: a %d points sum %v; b %d points", pages, na, sumA, nb)
	}
	_ = sumB
	lp := cloudwatch.NewListMetricsPaginator(c, &cloudwatch.ListMetricsInput{Namespace: aws.String("P"), MetricName: aws.String("N")})
	var listed int
	for lp.HasMorePages() {
		out, err := lp.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		listed += len(out.Metrics)
	}
	if listed != 520 {
		t.Fatalf("listed %d metrics, want 520", listed)
	}
	_, err := c.GetMetricData(ctx, &cloudwatch.GetMetricDataInput{NextToken: aws.String("bm9wZQ"),
		StartTime: aws.Time(now.Add(-time.Hour)), EndTime: aws.Time(now),
		MetricDataQueries: []types.MetricDataQuery{statQuery("a", "P", "M", "Sum", 60, nil)}})
	if code := apiCode(err); code != "InvalidNextToken" {
		t.Fatalf("bad token: %v (code %q)", err, code)
	}
}

func apiCode(err error) string {
	if ae, ok := errors.AsType[smithy.APIError](err); ok {
		return ae.ErrorCode()
	}
	return ""
}

func TestCloudWatchRefusals(t *testing.T) {
	t.Parallel()
	_, srv := cwServer(t)
	ctx := context.Background()
	now := time.Now()
	tests := []struct {
		name   string
		secret string
		header string
		in     *cloudwatch.PutMetricDataInput
		code   string
	}{
		{"bad signature", "wrong", "", &cloudwatch.PutMetricDataInput{Namespace: aws.String("N"), MetricData: []types.MetricDatum{{MetricName: aws.String("M"), Value: aws.Float64(1)}}}, "SignatureDoesNotMatch"},
		{"AWS namespace", cwTestSecret, "", &cloudwatch.PutMetricDataInput{Namespace: aws.String("AWS/Bedrock"), MetricData: []types.MetricDatum{{MetricName: aws.String("M"), Value: aws.Float64(1)}}}, "InvalidParameterValue"},
		{"value and stats", cwTestSecret, "", &cloudwatch.PutMetricDataInput{Namespace: aws.String("N"), MetricData: []types.MetricDatum{{MetricName: aws.String("M"), Value: aws.Float64(1),
			StatisticValues: &types.StatisticSet{SampleCount: aws.Float64(1), Sum: aws.Float64(1), Minimum: aws.Float64(1), Maximum: aws.Float64(1)}}}}, "InvalidParameterCombination"},
		{"too old", cwTestSecret, "", &cloudwatch.PutMetricDataInput{Namespace: aws.String("N"), MetricData: []types.MetricDatum{{MetricName: aws.String("M"), Value: aws.Float64(1), Timestamp: aws.Time(now.Add(-15 * 24 * time.Hour))}}}, "InvalidParameterValue"},
		{"throttle fault", cwTestSecret, FaultThrottle, &cloudwatch.PutMetricDataInput{Namespace: aws.String("N"), MetricData: []types.MetricDatum{{MetricName: aws.String("M"), Value: aws.Float64(1)}}}, "Throttling"},
		{"internal fault", cwTestSecret, FaultInternal, &cloudwatch.PutMetricDataInput{Namespace: aws.String("N"), MetricData: []types.MetricDatum{{MetricName: aws.String("M"), Value: aws.Float64(1)}}}, "InternalServiceError"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var opts []func(*cloudwatch.Options)
			if tc.header != "" {
				opts = append(opts, func(o *cloudwatch.Options) {
					o.APIOptions = append(o.APIOptions, smithyhttp.SetHeaderValue(HeaderFault, tc.header))
				})
			}
			_, err := cwClient(srv, "us-east-1", tc.secret, opts...).PutMetricData(ctx, tc.in)
			if got := apiCode(err); got != tc.code {
				t.Fatalf("error %v: code %q, want %q", err, got, tc.code)
			}
		})
	}
}

// TestCloudWatchBedrockMetrics: runtime calls signed for a region appear as
// AWS/Bedrock metrics of that region per ModelId, and in ModelUsage.
func TestCloudWatchBedrockMetrics(t *testing.T) {
	t.Parallel()
	s, srv := cwServer(t)
	ctx := context.Background()
	rt := func(region string) *bedrockruntime.Client {
		return bedrockruntime.New(bedrockruntime.Options{BaseEndpoint: aws.String(srv.URL), Region: region,
			Credentials: credentials.NewStaticCredentialsProvider(cwTestKey, cwTestSecret, ""),
			HTTPClient:  SDKHTTPClient(srv.Client()), Retryer: retry.NewStandard()})
	}
	converse := func(c *bedrockruntime.Client, model, text string) {
		t.Helper()
		_, err := c.Converse(ctx, &bedrockruntime.ConverseInput{ModelId: aws.String(model), Messages: []brtypes.Message{{
			Role: brtypes.ConversationRoleUser, Content: []brtypes.ContentBlock{&brtypes.ContentBlockMemberText{Value: text}}}}})
		if err != nil {
			t.Fatal(err)
		}
	}
	model := "anthropic.claude-3-5-haiku-20241022-v1:0"
	profile := "arn:aws:bedrock:us-west-2:111111111111:application-inference-profile/abc123"
	converse(rt("us-east-1"), model, "one two three")
	converse(rt("us-east-1"), model, "four five")
	converse(rt("us-west-2"), profile, "six")
	want := []ModelUsage{
		{Region: "us-east-1", ModelID: model, Invocations: 2, InputTokens: 5, OutputTokens: 2 * DefaultOutputTokens},
		{Region: "us-west-2", ModelID: profile, Invocations: 1, InputTokens: 1, OutputTokens: DefaultOutputTokens},
	}
	if got := s.ModelUsage(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("ModelUsage = %+v, want %+v", got, want)
	}
	c := cwClient(srv, "us-east-1", cwTestSecret)
	lm, err := c.ListMetrics(ctx, &cloudwatch.ListMetricsInput{Namespace: aws.String(BedrockNamespace), MetricName: aws.String("InputTokenCount")})
	if err != nil || len(lm.Metrics) != 1 || *lm.Metrics[0].Dimensions[0].Value != model {
		t.Fatalf("ListMetrics: %+v %v", lm, err)
	}
	now := time.Now()
	out, err := c.GetMetricData(ctx, &cloudwatch.GetMetricDataInput{
		StartTime: aws.Time(now.Add(-time.Hour)), EndTime: aws.Time(now.Add(time.Minute)),
		MetricDataQueries: []types.MetricDataQuery{
			statQuery("inp", BedrockNamespace, "InputTokenCount", "Sum", 7200, dims("ModelId", model)),
			statQuery("inv", BedrockNamespace, "Invocations", "Sum", 7200, dims("ModelId", model)),
		},
	})
	if err != nil || fmt.Sprint(out.MetricDataResults[0].Values, out.MetricDataResults[1].Values) != "[5] [2]" {
		t.Fatalf("GetMetricData: %+v %v", out, err)
	}
	s.Reset()
	if got := s.ModelUsage(); len(got) != 0 {
		t.Fatalf("after Reset: %+v", got)
	}
}

// TestCloudWatchWire: bad bodies and protocols are refused in CloudWatch's
// error shape, never with a panic or a 200.
func TestCloudWatchWire(t *testing.T) {
	t.Parallel()
	s := New(Options{})
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	tests := []struct {
		name, op, proto string
		body            []byte
		status          int
		query           string
	}{
		{"not cbor", "PutMetricData", "rpc-v2-cbor", []byte{0xff, 0x00}, 400, "InvalidParameterValue"},
		{"not a map", "PutMetricData", "rpc-v2-cbor", []byte{0x01}, 400, "InvalidParameterValue"},
		{"no protocol header", "ListMetrics", "", nil, 400, "InvalidAction"},
		{"unknown operation", "DeleteAlarms", "rpc-v2-cbor", nil, 404, "InvalidAction"},
		{"empty list", "ListMetrics", "rpc-v2-cbor", nil, 200, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			req, _ := http.NewRequest(http.MethodPost, srv.URL+CloudWatchPathPrefix+tc.op, bytes.NewReader(tc.body))
			if tc.proto != "" {
				req.Header.Set("Smithy-Protocol", tc.proto)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.status || !strings.HasPrefix(resp.Header.Get("X-Amzn-Query-Error"), tc.query) {
				t.Fatalf("status %d query error %q, want %d %q", resp.StatusCode, resp.Header.Get("X-Amzn-Query-Error"), tc.status, tc.query)
			}
		})
	}
}
