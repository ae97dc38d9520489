package cloudwatch

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"

	"github.com/bedrock-gateway/gateway/internal/usd"
)

// Reconciliation (`gateway usage reconcile`): Bedrock's own AWS/Bedrock
// InputTokenCount and OutputTokenCount per ModelId, read from CloudWatch in
// every region the entitlements use, against the gateway's ledger. Usage
// that reached Bedrock without passing the gateway (someone calling with the
// hub's credentials directly) and metering drift both show as differences.

// Bedrock's namespace, metrics and dimension.
const (
	BedrockNamespace    = "AWS/Bedrock"
	BedrockModelID      = "ModelId"
	bedrockInputTokens  = "InputTokenCount"
	bedrockOutputTokens = "OutputTokenCount"
)

// MetricsAPI is the part of the CloudWatch client reconciliation reads with.
type MetricsAPI interface {
	ListMetrics(ctx context.Context, in *cloudwatch.ListMetricsInput, opts ...func(*cloudwatch.Options)) (*cloudwatch.ListMetricsOutput, error)
	GetMetricData(ctx context.Context, in *cloudwatch.GetMetricDataInput, opts ...func(*cloudwatch.Options)) (*cloudwatch.GetMetricDataOutput, error)
}

// BedrockUsage is what Bedrock counted for one ModelId in one region.
type BedrockUsage struct {
	Region, ModelID           string
	InputTokens, OutputTokens int64
}

// readPeriod is the period of the GetMetricData queries: CloudWatch keeps
// hourly statistics for 455 days, so a past month stays readable.
const readPeriod = 3600

// maxQueries is GetMetricData's limit of queries per call.
const maxQueries = 500

// ReadBedrockUsage reads the input and output tokens Bedrock counted per
// ModelId in [start, end) from one region's CloudWatch: the ModelIds
// ListMetrics finds (it lists metrics with data in the last two weeks) plus
// known (the ledger's models and the profiles', so an older month is read
// too).
func ReadBedrockUsage(ctx context.Context, c MetricsAPI, region string, start, end time.Time, known []string) ([]BedrockUsage, error) {
	ids := map[string]bool{}
	for _, id := range known {
		ids[id] = true
	}
	for _, metric := range []string{bedrockInputTokens, bedrockOutputTokens} {
		p := cloudwatch.NewListMetricsPaginator(c, &cloudwatch.ListMetricsInput{
			Namespace: aws.String(BedrockNamespace), MetricName: aws.String(metric),
			Dimensions: []types.DimensionFilter{{Name: aws.String(BedrockModelID)}},
		})
		for p.HasMorePages() {
			out, err := p.NextPage(ctx)
			if err != nil {
				return nil, fmt.Errorf("listing %s metrics in %s: %w", BedrockNamespace, region, err)
			}
			for _, m := range out.Metrics {
				if len(m.Dimensions) == 1 && aws.ToString(m.Dimensions[0].Name) == BedrockModelID {
					ids[aws.ToString(m.Dimensions[0].Value)] = true
				}
			}
		}
	}
	sorted := make([]string, 0, len(ids))
	for id := range ids {
		if id != "" {
			sorted = append(sorted, id)
		}
	}
	slices.Sort(sorted)
	usage := make([]BedrockUsage, len(sorted))
	var queries []types.MetricDataQuery
	for i, id := range sorted {
		usage[i] = BedrockUsage{Region: region, ModelID: id}
		for j, metric := range []string{bedrockInputTokens, bedrockOutputTokens} {
			queries = append(queries, types.MetricDataQuery{
				Id: aws.String(fmt.Sprintf("m%d_%d", i, j)),
				MetricStat: &types.MetricStat{Period: aws.Int32(readPeriod), Stat: aws.String("Sum"),
					Metric: &types.Metric{Namespace: aws.String(BedrockNamespace), MetricName: aws.String(metric),
						Dimensions: []types.Dimension{{Name: aws.String(BedrockModelID), Value: aws.String(id)}}}},
			})
		}
	}
	for len(queries) > 0 {
		n := min(len(queries), maxQueries)
		p := cloudwatch.NewGetMetricDataPaginator(c, &cloudwatch.GetMetricDataInput{
			StartTime: aws.Time(start), EndTime: aws.Time(end), MetricDataQueries: queries[:n],
		})
		for p.HasMorePages() {
			out, err := p.NextPage(ctx)
			if err != nil {
				return nil, fmt.Errorf("reading %s metrics in %s: %w", BedrockNamespace, region, err)
			}
			for _, r := range out.MetricDataResults {
				var i, j int
				if _, err := fmt.Sscanf(aws.ToString(r.Id), "m%d_%d", &i, &j); err != nil || i >= len(usage) {
					continue
				}
				var sum float64
				for _, v := range r.Values {
					sum += v
				}
				if j == 0 {
					usage[i].InputTokens += int64(sum)
				} else {
					usage[i].OutputTokens += int64(sum)
				}
			}
		}
		queries = queries[n:]
	}
	return usage, nil
}

// LedgerLine is the ledger's usage of one entitlement, team and model in the
// month, and the region its calls went to.
type LedgerLine struct {
	Entitlement, Team, Model, Region string
	// Profile is the inference-profile ARN the calls went through (the
	// ModelId Bedrock counted them under); empty: none, the model itself.
	Profile                   string
	InputTokens, OutputTokens int64
}

// Profile is what an inference-profile ARN stands for.
type Profile struct {
	Entitlement string
	Team        string // empty for a profile of the whole entitlement
	Model       string // the foundation model, which prices it
}

// ProfileResolver says which entitlement (and team) an inference-profile ARN
// belongs to, so usage of a profile the ledger has no line for is still
// attributed; nil resolves nothing.
type ProfileResolver interface {
	ResolveProfile(region, arn string) (Profile, bool)
}

// Pricer prices tokens of a model; ok false when the model has no price.
type Pricer func(model string, input, output int64) (cost usd.Micros, ok bool)

// The kinds of a reconciliation row.
const (
	KindMatch     = "match"     // Bedrock and the ledger agree
	KindUnmetered = "unmetered" // Bedrock counted usage the ledger has none of: calls that did not pass the gateway
	KindDrift     = "drift"     // both have usage, and it differs
	KindUnseen    = "unseen"    // the ledger has usage CloudWatch does not show (another region, or not published yet)
)

// Row compares one ModelId in one region.
type Row struct {
	Region  string `json:"region"`
	ModelID string `json:"model_id"`
	Kind    string `json:"kind"`
	// Entitlements and Teams are those whose ledger usage the row holds (or
	// the profile's, when the ledger has none).
	Entitlements []string `json:"entitlements"`
	Teams        []string `json:"teams"`
	// Model is the model that prices the row.
	Model         string     `json:"model"`
	BedrockInput  int64      `json:"bedrock_input_tokens"`
	BedrockOutput int64      `json:"bedrock_output_tokens"`
	LedgerInput   int64      `json:"ledger_input_tokens"`
	LedgerOutput  int64      `json:"ledger_output_tokens"`
	DiffInput     int64      `json:"diff_input_tokens"` // Bedrock minus ledger
	DiffOutput    int64      `json:"diff_output_tokens"`
	DiffUSD       usd.Micros `json:"diff_usd"`
	Priced        bool       `json:"priced"`
	DiffTokensAbs int64      `json:"diff_tokens_abs"` // |DiffInput| + |DiffOutput|
	OverTolerance bool       `json:"exceeds_tolerance"`
}

// Result is a whole reconciliation.
type Result struct {
	Month     string   `json:"month"`
	Regions   []string `json:"regions"`
	Tolerance int64    `json:"tolerance"`
	Rows      []Row    `json:"rows"`
	// Totals sums every row (its region, model and kind empty).
	Totals Row `json:"totals"`
	// Exceeded counts the rows whose difference is over the tolerance.
	Exceeded int `json:"exceeded"`
}

// Compare reconciles Bedrock's counts with the ledger, one row per region
// and ModelId: a ledger line counts under its Profile when it has one, else
// under its Model (a foundation model, or a system cross-region profile ID,
// as the gateway called it). A row's difference is over tolerance when its
// input and output differences together exceed it (in tokens).
func Compare(bedrock []BedrockUsage, ledger []LedgerLine, profiles ProfileResolver, price Pricer, tolerance int64) Result {
	type rkey struct{ region, model string }
	rows := map[rkey]*Row{}
	get := func(k rkey) *Row {
		r := rows[k]
		if r == nil {
			r = &Row{Region: k.region, ModelID: k.model, Model: k.model}
			rows[k] = r
		}
		return r
	}
	for _, l := range ledger {
		id := l.Model
		if l.Profile != "" {
			id = l.Profile
		}
		r := get(rkey{l.Region, id})
		r.Model = l.Model
		r.LedgerInput += l.InputTokens
		r.LedgerOutput += l.OutputTokens
		r.Entitlements = appendNew(r.Entitlements, l.Entitlement)
		r.Teams = appendNew(r.Teams, l.Team)
	}
	for _, b := range bedrock {
		if b.InputTokens == 0 && b.OutputTokens == 0 {
			if _, ok := rows[rkey{b.Region, b.ModelID}]; !ok {
				continue // a metric with nothing this month
			}
		}
		r := get(rkey{b.Region, b.ModelID})
		r.BedrockInput += b.InputTokens
		r.BedrockOutput += b.OutputTokens
	}
	res := Result{Tolerance: tolerance, Rows: make([]Row, 0, len(rows))}
	regions := map[string]bool{}
	for _, r := range rows {
		regions[r.Region] = true
		if profiles != nil && len(r.Entitlements) == 0 {
			if p, ok := profiles.ResolveProfile(r.Region, r.ModelID); ok {
				r.Entitlements = []string{p.Entitlement}
				if p.Team != "" {
					r.Teams = []string{p.Team}
				}
				if p.Model != "" {
					r.Model = p.Model
				}
			}
		}
		r.DiffInput = r.BedrockInput - r.LedgerInput
		r.DiffOutput = r.BedrockOutput - r.LedgerOutput
		r.DiffTokensAbs = abs(r.DiffInput) + abs(r.DiffOutput)
		switch {
		case r.DiffInput == 0 && r.DiffOutput == 0:
			r.Kind = KindMatch
		case r.LedgerInput == 0 && r.LedgerOutput == 0:
			r.Kind = KindUnmetered
		case r.BedrockInput == 0 && r.BedrockOutput == 0:
			r.Kind = KindUnseen
		default:
			r.Kind = KindDrift
		}
		if price != nil {
			r.DiffUSD, r.Priced = price(r.Model, r.DiffInput, r.DiffOutput)
		}
		r.OverTolerance = r.DiffTokensAbs > tolerance
		if r.OverTolerance {
			res.Exceeded++
		}
		slices.Sort(r.Entitlements)
		slices.Sort(r.Teams)
		res.Rows = append(res.Rows, *r)
		t := &res.Totals
		t.BedrockInput += r.BedrockInput
		t.BedrockOutput += r.BedrockOutput
		t.LedgerInput += r.LedgerInput
		t.LedgerOutput += r.LedgerOutput
		t.DiffInput += r.DiffInput
		t.DiffOutput += r.DiffOutput
		t.DiffTokensAbs += r.DiffTokensAbs
		t.DiffUSD += r.DiffUSD
	}
	slices.SortFunc(res.Rows, func(a, b Row) int {
		return strings.Compare(a.Region+"\x00"+a.ModelID, b.Region+"\x00"+b.ModelID)
	})
	for r := range regions {
		res.Regions = append(res.Regions, r)
	}
	slices.Sort(res.Regions)
	return res
}

func appendNew(l []string, s string) []string {
	if s == "" || slices.Contains(l, s) {
		return l
	}
	return append(l, s)
}

func abs(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}
