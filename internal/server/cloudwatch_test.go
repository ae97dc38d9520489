package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	brtypes "github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"

	"github.com/bedrock-gateway/gateway/internal/cli"
	cwpub "github.com/bedrock-gateway/gateway/internal/cloudwatch"
	"github.com/bedrock-gateway/gateway/internal/metering"
	"github.com/bedrock-gateway/gateway/internal/report"
	"github.com/bedrock-gateway/gateway/internal/sim"
	"github.com/bedrock-gateway/gateway/internal/testutil/redistest"
)

const cloudWatchState = baseState + `
entitlements:
  - {name: support, model: "` + haiku + `", shares: [{target: o-testorg0001}]}
  - {name: nova, model: amazon.nova-lite-v1:0, shares: [{target: o-testorg0001}]}
`

// cwClient is the official CloudWatch client on the simulator, as the hub.
func cwClient(t *testing.T, up *upstream, region string) *cloudwatch.Client {
	t.Helper()
	c, err := cwpub.NewClient(context.Background(), cwpub.ClientOptions{Region: region, Endpoint: up.srv.URL,
		Credentials: credentials.NewStaticCredentialsProvider(hubAKID, hubSecret, ""), HTTPClient: sim.SDKHTTPClient(nil)})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// cwSum is the Sum of one metric of the gateway's namespace over the last hour.
func cwSum(t *testing.T, c *cloudwatch.Client, metric string, dims ...string) float64 {
	t.Helper()
	var d []types.Dimension
	for i := 0; i+1 < len(dims); i += 2 {
		d = append(d, types.Dimension{Name: aws.String(dims[i]), Value: aws.String(dims[i+1])})
	}
	now := time.Now()
	out, err := c.GetMetricData(context.Background(), &cloudwatch.GetMetricDataInput{
		StartTime: aws.Time(now.Add(-time.Hour)), EndTime: aws.Time(now.Add(time.Hour)),
		MetricDataQueries: []types.MetricDataQuery{{Id: aws.String("q"), MetricStat: &types.MetricStat{
			Period: aws.Int32(7200), Stat: aws.String("Sum"),
			Metric: &types.Metric{Namespace: aws.String("BedrockGateway"), MetricName: aws.String(metric), Dimensions: d}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, v := range out.MetricDataResults[0].Values {
		sum += v
	}
	return sum
}

// TestCloudWatchPublishAndReconcile is issue 16's end-to-end check on the
// simulator: calls from two teams through a gateway publishing to CloudWatch;
// after its shutdown (the last flush) CloudWatch's per-team sums equal the
// ledger; `gateway usage reconcile` finds no difference, then exactly the
// usage of calls made straight to the simulator with the hub's credentials.
func TestCloudWatchPublishAndReconcile(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	up := newUpstream(t, sim.Options{VerifyCloudWatch: sim.NewSigV4Check(sim.SigV4Check{Service: "monitoring",
		PathPrefix: sim.CloudWatchPathPrefix, Secrets: map[string]string{hubAKID: hubSecret}})})
	prices := filepath.Join(t.TempDir(), "prices.yaml")
	if err := os.WriteFile(prices, []byte(reconcilePrices), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	g := startGateway(t, gatewayOptions{redis: rs.URL(), upstream: up, stateYAML: cloudWatchState,
		args: []string{"--prices-file", prices, "--cloudwatch-namespace", "BedrockGateway", "--cloudwatch-interval", "1h",
			"--cloudwatch-endpoint", up.srv.URL}})
	dev, ds := g.client(t, devAKID, devSecret), g.client(t, dsAKID, dsSecret)
	for i := range 3 {
		if _, err := converse(ctx, dev, "support", int32(5+i)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := converse(ctx, ds, "support", 9); err != nil {
		t.Fatal(err)
	}
	if _, err := converse(ctx, ds, "nova", 4); err != nil {
		t.Fatal(err)
	}
	stream, err := ds.ConverseStream(ctx, &bedrockruntime.ConverseStreamInput{ModelId: aws.String("support"), Messages: userMessage("a streamed question")})
	if err != nil {
		t.Fatal(err)
	}
	for range stream.GetStream().Events() {
	}
	if err := stream.GetStream().Close(); err != nil {
		t.Fatal(err)
	}
	cw := cwClient(t, up, "us-east-1")
	if got := cwSum(t, cw, cwpub.Invocations, cwpub.DimEntitlement, "support"); got != 0 {
		t.Fatalf("published before the interval or shutdown: %v", got)
	}
	g.stop() // the shutdown flush

	// A second replica serves the admin API over the same ledger.
	g2 := startGateway(t, gatewayOptions{redis: rs.URL(), upstream: up, args: []string{"--prices-file", prices}})
	month := time.Now().UTC().Format("2006-01")
	var rep report.Report
	if code := g2.admin(t, "GET", "/admin/v1/usage?month="+month+"&group_by=entitlement,team", nil, &rep); code != 200 {
		t.Fatalf("usage: %d", code)
	}
	if len(rep.Rows) != 3 {
		t.Fatalf("ledger rows %+v", rep.Rows)
	}
	for _, r := range rep.Rows {
		for _, c := range []struct {
			metric string
			want   int64
		}{{cwpub.Invocations, r.Requests}, {cwpub.InputTokenCount, r.InputTokens}, {cwpub.OutputTokenCount, r.OutputTokens}} {
			if got := cwSum(t, cw, c.metric, cwpub.DimEntitlement, r.Entitlement, cwpub.DimTeam, r.Team); got != float64(c.want) {
				t.Errorf("%s of %s/%s: CloudWatch %v, ledger %d", c.metric, r.Entitlement, r.Team, got, c.want)
			}
		}
	}
	for _, team := range []string{"development", "data-science"} {
		var want int64
		for _, r := range rep.Rows {
			if r.Team == team {
				want += r.InputTokens
			}
		}
		if got := cwSum(t, cw, cwpub.InputTokenCount, cwpub.DimTeam, team); got != float64(want) {
			t.Errorf("team %s: CloudWatch %v input tokens, ledger %d", team, got, want)
		}
	}
	if cwSum(t, cw, cwpub.TimeToFirstToken, cwpub.DimEntitlement, "support") <= 0 {
		t.Error("no TimeToFirstToken for the stream")
	}

	reconcile := func(extra ...string) (cwpub.Result, error) {
		var out, errOut bytes.Buffer
		env := cli.Env{Stdout: &out, Stderr: &errOut, Getenv: func(k string) string {
			return map[string]string{"GATEWAY_ADMIN_TOKEN": adminToken, "GATEWAY_ADMIN_URL": "http://" + g2.OpsAddr()}[k]
		}, Prices: func(path string) (cwpub.Pricer, error) {
			t, err := metering.LoadPrices(path)
			if err != nil {
				return nil, err
			}
			return t.PriceTokens, nil
		}, CloudWatch: func(ctx context.Context, region, endpoint string) (cwpub.MetricsAPI, error) {
			if endpoint != up.srv.URL {
				return nil, fmt.Errorf("endpoint %q", endpoint)
			}
			return cwClient(t, up, region), nil
		}}
		args := append([]string{"usage", "reconcile", "--month", month, "--prices-file", prices, "--cloudwatch-endpoint", up.srv.URL, "--region", "us-east-1", "-o", "json"}, extra...)
		err := cli.Run(ctx, args, env)
		var res cwpub.Result
		if jerr := json.Unmarshal(out.Bytes(), &res); jerr != nil {
			t.Fatalf("reconcile output %q: %v (%v, %s)", out.String(), jerr, err, errOut.String())
		}
		return res, err
	}
	res, err := reconcile()
	if err != nil {
		t.Fatalf("reconcile with nothing outside the gateway: %v\n%+v", err, res)
	}
	if len(res.Rows) != 2 || res.Totals.DiffInput != 0 || res.Totals.DiffOutput != 0 || res.Totals.LedgerInput == 0 {
		t.Fatalf("reconcile: %+v", res)
	}
	for _, r := range res.Rows {
		if r.Kind != cwpub.KindMatch {
			t.Fatalf("row %+v", r)
		}
	}

	// Calls straight to Bedrock (the simulator) with the hub's credentials.
	hub := bedrockruntime.New(bedrockruntime.Options{BaseEndpoint: aws.String(up.srv.URL), Region: "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider(hubAKID, hubSecret, ""), HTTPClient: sim.SDKHTTPClient(nil)})
	direct := func(model, text string) *bedrockruntime.ConverseOutput {
		out, err := hub.Converse(ctx, &bedrockruntime.ConverseInput{ModelId: aws.String(model), Messages: []brtypes.Message{{
			Role: brtypes.ConversationRoleUser, Content: []brtypes.ContentBlock{&brtypes.ContentBlockMemberText{Value: text}}}}})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	d1 := direct(haiku, "around the gateway we go")
	d2 := direct("meta.llama3-8b-instruct-v1:0", "nobody meters me")
	res, err = reconcile()
	if !errors.Is(err, cli.ErrReconcileDifference) {
		t.Fatalf("reconcile after direct calls: %v", err)
	}
	rows := map[string]cwpub.Row{}
	for _, r := range res.Rows {
		rows[r.ModelID] = r
	}
	if r := rows[haiku]; r.Kind != cwpub.KindDrift || r.DiffInput != int64(*d1.Usage.InputTokens) || r.DiffOutput != int64(*d1.Usage.OutputTokens) ||
		!r.Priced || r.DiffUSD <= 0 || strings.Join(r.Teams, "+") != "data-science+development" {
		t.Errorf("haiku row %+v, direct usage %+v", r, *d1.Usage)
	}
	if r := rows["meta.llama3-8b-instruct-v1:0"]; r.Kind != cwpub.KindUnmetered || r.DiffInput != int64(*d2.Usage.InputTokens) || r.Priced {
		t.Errorf("llama row %+v", r)
	}
	if r := rows["amazon.nova-lite-v1:0"]; r.Kind != cwpub.KindMatch {
		t.Errorf("nova row %+v", r)
	}
	if res.Exceeded != 2 {
		t.Errorf("exceeded %d, want 2", res.Exceeded)
	}
	// Within a generous tolerance, exit 0; CSV for a spreadsheet.
	if _, err := reconcile("--tolerance", "1000"); err != nil {
		t.Fatalf("with tolerance: %v", err)
	}
}

// TestReconcileCloudWatchDown: an unreachable CloudWatch is a failure, not
// a difference (exit 1, not 3).
func TestReconcileCloudWatchDown(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rs := redistest.Start(t)
	up := newUpstream(t, sim.Options{})
	g := startGateway(t, gatewayOptions{redis: rs.URL(), upstream: up, stateYAML: cloudWatchState})
	e := cli.Env{Stdout: &bytes.Buffer{}, Stderr: &bytes.Buffer{}, Getenv: func(k string) string {
		return map[string]string{"GATEWAY_ADMIN_TOKEN": adminToken, "GATEWAY_ADMIN_URL": "http://" + g.OpsAddr()}[k]
	}, CloudWatch: func(ctx context.Context, region, endpoint string) (cwpub.MetricsAPI, error) {
		return cwpub.NewClient(ctx, cwpub.ClientOptions{Region: region, Endpoint: endpoint, MaxAttempts: 1,
			Credentials: credentials.NewStaticCredentialsProvider(hubAKID, hubSecret, "")})
	}}
	err := cli.Run(ctx, []string{"usage", "reconcile", "--cloudwatch-endpoint", httpDead(t)}, e)
	if err == nil || errors.Is(err, cli.ErrReconcileDifference) {
		t.Fatalf("unreachable CloudWatch: %v", err)
	}
}

// httpDead is the URL of a server that answers every call with 500.
func httpDead(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}
