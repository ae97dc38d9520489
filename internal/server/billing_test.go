package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"

	"github.com/bedrock-gateway/gateway/internal/bedrock"
	"github.com/bedrock-gateway/gateway/internal/cli"
	cwpub "github.com/bedrock-gateway/gateway/internal/cloudwatch"
	"github.com/bedrock-gateway/gateway/internal/sim"
	"github.com/bedrock-gateway/gateway/internal/testutil/redistest"
	"github.com/bedrock-gateway/gateway/internal/testutil/wait"
)

// billingState shares support per team with development (through the
// platform OU) and data science.
const billingState = baseState + `entitlements:
  - name: support
    model: ` + haiku + `
    billing: {profiles: per_team}
    shares: [{target: ou-ab12-platform}, {target: "333333333333"}]
`

// metricValue reads one sample of a counter family, by one label.
func metricValue(t *testing.T, g *gateway, family, labelName, labelValue string) float64 {
	t.Helper()
	mfs, err := g.Metrics().Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != family {
			continue
		}
		for _, m := range mf.GetMetric() {
			if label(m, labelName) == labelValue {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// TestBillingProfilesEndToEnd: two replicas on one Redis, the simulator as
// Bedrock (runtime and control plane). Before any profile exists a call goes
// to the foundation model and counts gateway_billing_profile_missing_total.
// The periodic billing sync of one replica creates one tagged profile per
// team; both replicas use them without a restart; calls of both teams, every
// profile-capable operation, land on their own team's profile, and the
// simulator's per-ModelId usage equals the ledger per team and profile.
func TestBillingProfilesEndToEnd(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	up := newUpstream(t, sim.Options{})
	ctx := t.Context()

	g1 := startGateway(t, gatewayOptions{redis: rs.URL(), upstream: up, stateYAML: billingState,
		args: []string{"--bedrock-endpoint", up.srv.URL}})
	dev := g1.client(t, devAKID, devSecret)
	if _, err := dev.Converse(ctx, &bedrockruntime.ConverseInput{ModelId: aws.String("support"), Messages: userMessage("before any profile")}); err != nil {
		t.Fatal(err)
	}
	if n := metricValue(t, g1, "gateway_billing_profile_missing_total", "entitlement", "support"); n != 1 {
		t.Fatalf("gateway_billing_profile_missing_total = %v, want 1", n)
	}
	if u := up.sim.UsageByModelID()[haiku]; u.Invocations != 1 {
		t.Fatalf("the call without a profile did not go to the model: %+v", up.sim.UsageByModelID())
	}

	// A second replica runs the periodic sync (its first run is at start).
	g2 := startGateway(t, gatewayOptions{redis: rs.URL(), upstream: up,
		args: []string{"--bedrock-endpoint", up.srv.URL, "--billing-sync-interval", "1h"}})
	wait.For(t, "both replicas use the profiles of both teams", 10*time.Second, func() bool {
		for _, g := range []*gateway{g1, g2} {
			for _, team := range []string{"development", "data-science"} {
				if _, ok := g.profiles.Profile("support", team); !ok {
					return false
				}
			}
		}
		return true
	})
	profiles := up.sim.Profiles()
	if len(profiles) != 2 {
		t.Fatalf("%d profiles: %+v", len(profiles), profiles)
	}
	teamOf := map[string]string{}
	for _, p := range profiles {
		teamOf[p.ARN] = p.Tags["bedrock-gateway:team"]
		if p.Tags["bedrock-gateway:entitlement"] != "support" || p.Model != haiku {
			t.Errorf("profile %+v", p)
		}
	}
	if n := metricValue(t, g2, "gateway_billing_sync_total", "result", "ok"); n != 1 {
		t.Errorf("gateway_billing_sync_total{result=ok} = %v", n)
	}

	ds := g2.client(t, dsAKID, dsSecret)
	devOn2 := g2.client(t, devAKID, devSecret)
	body := []byte(`{"anthropic_version":"bedrock-2023-05-31","max_tokens":50,"messages":[{"role":"user","content":"one two three four"}]}`)
	for _, c := range []*bedrockruntime.Client{dev, devOn2, ds} {
		if _, err := c.Converse(ctx, &bedrockruntime.ConverseInput{ModelId: aws.String("support"), Messages: userMessage("hello there")}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.InvokeModel(ctx, &bedrockruntime.InvokeModelInput{ModelId: aws.String("support"), Body: body, ContentType: aws.String("application/json")}); err != nil {
			t.Fatal(err)
		}
		cs, err := c.ConverseStream(ctx, &bedrockruntime.ConverseStreamInput{ModelId: aws.String("support"), Messages: userMessage("a streamed one")})
		if err != nil {
			t.Fatal(err)
		}
		drain(t, cs.GetStream().Events(), cs.GetStream().Close)
		is, err := c.InvokeModelWithResponseStream(ctx, &bedrockruntime.InvokeModelWithResponseStreamInput{ModelId: aws.String("support"), Body: body, ContentType: aws.String("application/json")})
		if err != nil {
			t.Fatal(err)
		}
		drain(t, is.GetStream().Events(), is.GetStream().Close)
	}
	for _, g := range []*gateway{g1, g2} {
		if err := g.Limiter().Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	rows, err := g1.Limiter().Ledger(ctx, time.Now().UTC().Format("2006-01"), []string{"support"})
	if err != nil {
		t.Fatal(err)
	}
	perModelID := map[string]bedrock.Usage{}
	requests := map[string]int64{}
	for _, r := range rows {
		if r.Model != haiku {
			t.Errorf("ledger model %q: the model must stay the foundation model", r.Model)
		}
		id := r.Model
		if r.Profile != "" {
			id = r.Profile
			if teamOf[r.Profile] != r.Team {
				t.Errorf("team %s's usage on the profile of %s", r.Team, teamOf[r.Profile])
			}
		}
		u := perModelID[id]
		u.InputTokens += r.InputTokens
		u.OutputTokens += r.OutputTokens
		perModelID[id] = u
		requests[id] += r.Requests
	}
	served := up.sim.UsageByModelID()
	for id, u := range perModelID {
		s := served[id]
		if s.InputTokens != u.InputTokens || s.OutputTokens != u.OutputTokens || s.Invocations != requests[id] {
			t.Errorf("%s: simulator %+v, ledger %+v in %d requests", id, s, u, requests[id])
		}
	}
	if len(perModelID) != 3 || requests[haiku] != 1 {
		t.Errorf("ledger per model ID %+v, requests %v", perModelID, requests)
	}
	for arn, team := range teamOf {
		want := int64(8) // development: two clients, four operations each
		if team == "data-science" {
			want = 4
		}
		if requests[arn] != want {
			t.Errorf("profile of %s: %d requests, want %d", team, requests[arn], want)
		}
	}
}

// drain reads a stream's events to its end.
func drain[T any](t *testing.T, events <-chan T, closeFn func() error) {
	t.Helper()
	for range events {
	}
	if err := closeFn(); err != nil && err != io.EOF {
		t.Fatal(err)
	}
}

// TestBillingReconcileByProfile: the whole finance loop on the
// simulator. Calls of two teams land on their teams' application inference
// profiles; `gateway usage reconcile` compares Bedrock's per-ModelId counts
// (profile ARNs) with the ledger per profile and finds no difference; a call
// made straight to one team's profile with the hub's credentials then shows
// as exactly that difference on that profile, attributed to its team.
func TestBillingReconcileByProfile(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	up := newUpstream(t, sim.Options{})
	ctx := t.Context()
	g := startGateway(t, gatewayOptions{redis: rs.URL(), upstream: up, stateYAML: billingState,
		args: []string{"--bedrock-endpoint", up.srv.URL, "--billing-sync-interval", "1h"}})
	wait.For(t, "the profiles of both teams", 10*time.Second, func() bool {
		_, dev := g.profiles.Profile("support", "development")
		_, ds := g.profiles.Profile("support", "data-science")
		return dev && ds
	})
	for _, c := range []*bedrockruntime.Client{g.client(t, devAKID, devSecret), g.client(t, dsAKID, dsSecret)} {
		for range 2 {
			if _, err := c.Converse(ctx, &bedrockruntime.ConverseInput{ModelId: aws.String("support"), Messages: userMessage("count me")}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := g.Limiter().Flush(ctx); err != nil {
		t.Fatal(err)
	}
	month := time.Now().UTC().Format("2006-01")
	reconcile := func() (cwpub.Result, error) {
		var out, errOut bytes.Buffer
		env := cli.Env{Stdout: &out, Stderr: &errOut, Getenv: func(k string) string {
			return map[string]string{"GATEWAY_ADMIN_TOKEN": adminToken, "GATEWAY_ADMIN_URL": "http://" + g.OpsAddr()}[k]
		}, CloudWatch: func(ctx context.Context, region, endpoint string) (cwpub.MetricsAPI, error) {
			return cwClient(t, up, region), nil
		}}
		err := cli.Run(ctx, []string{"usage", "reconcile", "--month", month, "--cloudwatch-endpoint", up.srv.URL, "--region", "us-east-1", "-o", "json"}, env)
		var res cwpub.Result
		if jerr := json.Unmarshal(out.Bytes(), &res); jerr != nil {
			t.Fatalf("reconcile output %q: %v (%v, %s)", out.String(), jerr, err, errOut.String())
		}
		return res, err
	}
	res, err := reconcile()
	if err != nil {
		t.Fatalf("reconcile: %v\n%+v", err, res)
	}
	teamOf := map[string]string{}
	for _, p := range up.sim.Profiles() {
		teamOf[p.ARN] = p.Tags["bedrock-gateway:team"]
	}
	if len(res.Rows) != 2 {
		t.Fatalf("want one row per team profile: %+v", res.Rows)
	}
	for _, r := range res.Rows {
		if r.Kind != cwpub.KindMatch || teamOf[r.ModelID] == "" || strings.Join(r.Teams, ",") != teamOf[r.ModelID] || r.LedgerInput == 0 {
			t.Fatalf("row %+v (profile of %q)", r, teamOf[r.ModelID])
		}
	}

	// Someone with the hub's credentials calls the data-science profile
	// directly: Bedrock counts it, the ledger cannot.
	arn, _ := g.profiles.Profile("support", "data-science")
	hub := bedrockruntime.New(bedrockruntime.Options{BaseEndpoint: aws.String(up.srv.URL), Region: "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider(hubAKID, hubSecret, ""), HTTPClient: sim.SDKHTTPClient(nil)})
	direct, err := hub.Converse(ctx, &bedrockruntime.ConverseInput{ModelId: aws.String(arn), Messages: userMessage("around the gateway")})
	if err != nil {
		t.Fatal(err)
	}
	res, err = reconcile()
	if !errors.Is(err, cli.ErrReconcileDifference) {
		t.Fatalf("reconcile after a direct call: %v", err)
	}
	for _, r := range res.Rows {
		if r.ModelID != arn {
			if r.Kind != cwpub.KindMatch {
				t.Errorf("row %+v", r)
			}
			continue
		}
		if r.Kind != cwpub.KindDrift || r.DiffInput != int64(*direct.Usage.InputTokens) || r.DiffOutput != int64(*direct.Usage.OutputTokens) ||
			strings.Join(r.Teams, ",") != "data-science" {
			t.Errorf("data-science profile row %+v, direct usage %+v", r, *direct.Usage)
		}
	}
}
