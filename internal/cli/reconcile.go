package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	cwpub "github.com/bedrock-gateway/gateway/internal/cloudwatch"
	"github.com/bedrock-gateway/gateway/internal/report"
	"github.com/bedrock-gateway/gateway/internal/state"
)

// ErrReconcileDifference: `usage reconcile` found a difference over its
// tolerance (exit code 3, apart from failures).
var ErrReconcileDifference = errors.New("difference over the tolerance")

// CloudWatchFactory builds the CloudWatch client reconcile reads a region
// with (endpoint: --cloudwatch-endpoint, may be empty).
type CloudWatchFactory func(ctx context.Context, region, endpoint string) (cwpub.MetricsAPI, error)

func defaultCloudWatch(ctx context.Context, region, endpoint string) (cwpub.MetricsAPI, error) {
	return cwpub.NewClient(ctx, cwpub.ClientOptions{Region: region, Endpoint: endpoint})
}

var reconcileFormats = []string{outTable, outJSON, outCSV}

func runReconcile(ctx context.Context, args []string, env Env) error {
	fs, common := newFlags("usage reconcile", "usage reconcile [--month YYYY-MM] [--tolerance N] [-o table|json|csv] [flags]\n\n"+
		"Compares Bedrock's own token counts (CloudWatch AWS/Bedrock InputTokenCount and\n"+
		"OutputTokenCount per ModelId, in every region the entitlements use, read with the\n"+
		"hub's AWS credentials) with the gateway's ledger (the admin API's usage report):\n"+
		"usage that reached Bedrock without passing the gateway, and metering drift, with the\n"+
		"difference in tokens and dollars. Exits 3 when a row differs by more than --tolerance.", env, reconcileFormats)
	month := fs.String("month", "", "month, YYYY-MM (default this month in --time-zone)")
	tolerance := fs.Int64("tolerance", 0, "tokens (input and output together) a ModelId may differ by before the exit code is 3")
	region := fs.String("region", "", "region of entitlements that name none: the gateway's --region (default AWS_REGION, AWS_DEFAULT_REGION, else us-east-1)")
	endpoint := fs.String("cloudwatch-endpoint", "", "CloudWatch API URL instead of AWS's (a VPC endpoint, the simulator); AWS_ENDPOINT_URL_CLOUDWATCH is honoured too")
	pricesFile := fs.String("prices-file", "", "the gateway's price table, for the difference in dollars (empty: no dollars)")
	zone := fs.String("time-zone", "UTC", "the gateway's --time-zone: where its months begin and end")
	pos, err := parse(fs, args)
	if err != nil {
		return done(err)
	}
	if len(pos) > 0 {
		return usageError(fs, "usage reconcile: unexpected argument %q", pos[0])
	}
	loc, err := time.LoadLocation(*zone)
	if err != nil {
		return usageError(fs, "usage reconcile: --time-zone %q: %v", *zone, err)
	}
	if *month == "" {
		*month = time.Now().In(loc).Format("2006-01")
	}
	m, err := time.ParseInLocation("2006-01", *month, loc)
	if err != nil || m.Format("2006-01") != *month {
		return usageError(fs, "usage reconcile: --month must be YYYY-MM, not %q", *month)
	}
	if *tolerance < 0 {
		return usageError(fs, "usage reconcile: --tolerance must not be negative")
	}
	var price cwpub.Pricer
	if *pricesFile != "" {
		if env.Prices == nil {
			return errors.New("usage reconcile: this program cannot read price tables")
		}
		if price, err = env.Prices(*pricesFile); err != nil {
			return err
		}
	}
	defRegion := cmpOr(*region, env.Getenv("AWS_REGION"), env.Getenv("AWS_DEFAULT_REGION"), "us-east-1")
	c, err := common.client(env)
	if err != nil {
		return err
	}

	// The ledger, per entitlement, team and model, and each entitlement's region.
	var ents struct {
		Entitlements []state.Entitlement `json:"entitlements"`
	}
	if _, err := c.getJSON(ctx, "/admin/v1/entitlements", nil, &ents); err != nil {
		return err
	}
	regionOf := map[string]string{}
	regions := []string{defRegion}
	for _, e := range ents.Entitlements {
		r := cmpOr(e.Region, defRegion)
		regionOf[e.Name] = r
		regions = appendNewString(regions, r)
	}
	var rep report.Report
	q := url.Values{"month": {*month}, "group_by": {"entitlement,team,model,profile"}, "format": {"json"}}
	if _, err := c.getJSON(ctx, "/admin/v1/usage", q, &rep); err != nil {
		return err
	}
	var ledger []cwpub.LedgerLine
	known := map[string][]string{} // region -> the ledger's models there
	for _, r := range rep.Rows {
		reg := cmpOr(regionOf[r.Entitlement], defRegion) // a deleted entitlement: the default region
		ledger = append(ledger, cwpub.LedgerLine{Entitlement: r.Entitlement, Team: r.Team, Model: r.Model, Region: reg,
			Profile: r.Profile, InputTokens: r.InputTokens, OutputTokens: r.OutputTokens})
		known[reg] = appendNewString(known[reg], cmpOr(r.Profile, r.Model))
		regions = appendNewString(regions, reg)
	}
	slices.Sort(regions)

	// Bedrock's counts, region by region.
	factory := env.CloudWatch
	if factory == nil {
		factory = defaultCloudWatch
	}
	start := m
	end := m.AddDate(0, 1, 0)
	var bedrock []cwpub.BedrockUsage
	for _, reg := range regions {
		cw, err := factory(ctx, reg, *endpoint)
		if err != nil {
			return err
		}
		u, err := cwpub.ReadBedrockUsage(ctx, cw, reg, start, end, known[reg])
		if err != nil {
			return err
		}
		bedrock = append(bedrock, u...)
	}
	profiles := env.Profiles
	if profiles == nil {
		// The gateway's recorded profiles (gateway billing sync), so usage of a
		// profile the ledger has no line for is still attributed.
		var recs billingProfiles
		if _, err := c.getJSON(ctx, "/admin/v1/billing/profiles", nil, &recs); err != nil {
			return err
		}
		modelOf := map[string]string{}
		for _, e := range ents.Entitlements {
			modelOf[e.Name] = e.Model
		}
		profiles = recordedProfiles{recs: recs.Profiles, modelOf: modelOf}
	}
	res := cwpub.Compare(bedrock, ledger, profiles, price, *tolerance)
	res.Month = *month
	res.Regions = regions
	if err := printReconcile(env, common, &res); err != nil {
		return err
	}
	if res.Exceeded > 0 {
		return fmt.Errorf("usage reconcile: %d ModelId(s) differ by more than %d tokens (%s tokens and %s USD in all): %w",
			res.Exceeded, *tolerance, signed(res.Totals.DiffInput+res.Totals.DiffOutput), res.Totals.DiffUSD, ErrReconcileDifference)
	}
	return nil
}

func printReconcile(env Env, common *commonFlags, res *cwpub.Result) error {
	if common.output == outJSON {
		b, err := json.MarshalIndent(res, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(env.Stdout, "%s\n", b)
		return err
	}
	t := table{header: []string{"REGION", "MODEL_ID", "KIND", "ENTITLEMENTS", "TEAMS",
		"BEDROCK_INPUT", "BEDROCK_OUTPUT", "LEDGER_INPUT", "LEDGER_OUTPUT", "DIFF_INPUT", "DIFF_OUTPUT", "DIFF_USD", "OVER_TOLERANCE"},
		empty: "no Bedrock usage and no ledger usage in " + res.Month}
	for _, r := range append(res.Rows, res.Totals) {
		usdText := r.DiffUSD.String()
		if !r.Priced && r.ModelID != "" {
			usdText = "unpriced"
		}
		over := ""
		if r.OverTolerance {
			over = "yes"
		}
		if r.ModelID == "" { // the totals row
			if len(res.Rows) == 0 {
				break
			}
			over = strconv.Itoa(res.Exceeded)
		}
		t.rows = append(t.rows, []any{r.Region, r.ModelID, r.Kind, strings.Join(r.Entitlements, "+"), strings.Join(r.Teams, "+"),
			count(r.BedrockInput), count(r.BedrockOutput), count(r.LedgerInput), count(r.LedgerOutput),
			signed(r.DiffInput), signed(r.DiffOutput), usdText, over})
	}
	return common.printRows(env.Stdout, t)
}

// signed shows a difference with its sign.
func signed(v int64) string {
	if v > 0 {
		return "+" + strconv.FormatInt(v, 10)
	}
	return strconv.FormatInt(v, 10)
}

func cmpOr(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

func appendNewString(l []string, s string) []string {
	if s == "" || slices.Contains(l, s) {
		return l
	}
	return append(l, s)
}

// recordedProfiles resolves inference-profile ARNs from the gateway's billing
// profile records.
type recordedProfiles struct {
	recs    []state.BillingProfile
	modelOf map[string]string // entitlement -> its model
}

func (p recordedProfiles) ResolveProfile(_, arn string) (cwpub.Profile, bool) {
	for _, r := range p.recs {
		if r.ARN == arn {
			return cwpub.Profile{Entitlement: r.Entitlement, Team: r.Team, Model: p.modelOf[r.Entitlement]}, true
		}
	}
	return cwpub.Profile{}, false
}
