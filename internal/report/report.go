// Package report builds the monthly usage report and the quota report, and
// renders them (JSON, CSV, a text table). It owns the query and result types
// that the admin API serves and the CLI decodes. Its inputs (the quota
// ledger, the caps' status, the state served now and the prices) come
// through the small interfaces below, which the server implements over
// quota, authz and metering: so the CLI, which only reads reports, depends
// on none of those.
package report

import (
	"cmp"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/bedrock-gateway/gateway/internal/bedrock"
	"github.com/bedrock-gateway/gateway/internal/state"
	"github.com/bedrock-gateway/gateway/internal/usd"
)

// Report groupings.
const (
	GroupByTeam        = "team"
	GroupByAccount     = "account"
	GroupByEntitlement = "entitlement"
	GroupByModel       = "model"
	GroupByTier        = "tier"
	GroupByPrincipal   = "principal"
)

// CSVHeader is the usage report's CSV header (a public contract: finance tools
// parse it). Columns added later come last, so earlier ones keep their positions.
// A month's totals row has the month and every grouping column (team,
// account, entitlement, model, tier, principal) empty; a group row always has its
// grouping column set, so neither can be taken for the other.
const CSVHeader = "month,team,account,entitlement,model,requests,input_tokens,output_tokens,cache_read_tokens,cache_write_tokens,total_tokens,cost_usd,errors,counted_tokens,estimated_requests,tier,principal"

// MaxMonths is the longest span one usage report covers.
const MaxMonths = 24

// UnknownTeam is the team of ledger accounts that are no longer in the
// organization, so their usage is still reported.
const UnknownTeam = "(unknown)"

// NoPrincipal is the principal group of calls made with gateway-issued
// credentials (access keys, API keys), which carry no IAM principal.
const NoPrincipal = "(gateway credential)"

// UnknownModel groups ledger lines without a model (none are written so),
// so a group row never has an empty grouping column.
const UnknownModel = "(unknown)"

// ErrInvalidQuery is wrapped by the errors that are the caller's fault (a
// bad month or grouping, an unknown entitlement); the admin API answers them
// with 400 and the error's message.
var ErrInvalidQuery = errors.New("invalid query")

// UsageQuery asks for the usage report of one month, or of the months From
// to To (at most MaxMonths), grouped one way.
type UsageQuery struct {
	Month string // YYYY-MM; empty (with From and To empty) means the current month in Location
	// From and To, YYYY-MM, both or neither, not with Month: the months
	// From to To, both included.
	From, To string
	GroupBy  string // team, account, entitlement, model, tier or principal; empty means team
}

// LedgerRow is one line of the monthly usage ledger: the usage of one
// (entitlement, account, model, tier) in a month. Its fields are those of
// quota.LedgerRow, so the server converts one into the other.
type LedgerRow struct {
	Month, Entitlement, Account, Model                                             string
	Tier                                                                           string // pricing tier; "default" for lines written without one
	Requests, Errors, InputTokens, OutputTokens, CacheReadTokens, CacheWriteTokens int64
	// Estimated counts the settled requests whose usage was estimated.
	Estimated int64
	// Team is the account's team when the calls were made; empty for lines
	// written before teams were recorded (the report then uses the team the
	// account has now).
	Team string
	// CountedTokens is what the caps were charged, per the entitlement's
	// count rule; 0 for usage settled before it was recorded.
	CountedTokens int64
	// Principal is the IAM principal (canonical role or user ARN) that made
	// the calls; empty for gateway-issued credentials.
	Principal string
}

// LedgerReader reads the monthly usage ledger (the server adapts
// quota.Limiter).
type LedgerReader interface {
	Ledger(ctx context.Context, month string, entitlements []string) ([]LedgerRow, error)
}

// Cap levels, as quota names them (the level field of a CapReport).
const (
	LevelEntitlement = "entitlement"
	LevelShare       = "share"
	LevelAccount     = "account"
)

// Cap is one monthly token cap to read.
type Cap struct {
	Level  string // LevelEntitlement, LevelShare or LevelAccount
	Target string // the entitlement name, the share's target, the account ID
	Limit  int64  // tokens per calendar month
}

// CapStatus is one cap's state this month.
type CapStatus struct {
	Level, Target string
	Limit, Used   int64
	// Reserved is held by requests in flight.
	Reserved int64
	// Remaining is Limit-Used-Reserved, not below 0; -1 when Limit is 0.
	Remaining int64
	Month     string
	ResetAt   time.Time
}

// StatusReader reads the caps of an entitlement in the current month (the
// server adapts quota.Limiter).
type StatusReader interface {
	Status(ctx context.Context, entitlement string, caps []Cap) ([]CapStatus, error)
}

// Snapshot is the state served now, as reports read it (the server adapts
// authz.Snapshot).
type Snapshot interface {
	// State names the entitlements and their caps; read-only.
	State() *state.State
	// Account finds a member account of the organization.
	Account(id string) (Account, bool)
}

// Account is what reports show of a member account.
type Account struct {
	// Team is the account's team as decisions see it (its own, else its
	// OU's name, else "root").
	Team string
	Name string
}

// Tokens are the four token types of a ledger line.
type Tokens struct {
	Input, Output, CacheRead, CacheWrite int64
}

// Pricer prices tokens (the server adapts metering.PriceTable).
type Pricer interface {
	// Cost is the cost of tokens of model in a pricing tier ("" or
	// "default" for the default tier); false when the price table has no
	// price for them.
	Cost(model, tier string, t Tokens) (usd.Micros, bool)
}

// ReportOptions configure Reports.
type ReportOptions struct {
	// Ledger is required.
	Ledger LedgerReader
	// Status answers Remaining; nil makes Remaining fail.
	Status StatusReader
	// Snapshot returns the state served now: it names the entitlements to
	// read and maps accounts to teams. It may return nil before the first
	// snapshot is loaded, which makes reports fail. A nil Snapshot reads
	// only ExtraEntitlements and reports every account's team as UnknownTeam.
	Snapshot func() Snapshot
	// Prices prices tokens; nil prices nothing (every cost is 0).
	Prices Pricer
	// Now is the clock for the current month; nil means time.Now.
	Now func() time.Time
	// Location is the zone of the calendar months, as configured for quota;
	// nil means UTC.
	Location *time.Location
	// ExtraEntitlements, when set, names entitlements to read beyond those in
	// the current state. The ledger is kept per entitlement, so without it
	// the usage of an entitlement deleted during the month is missing from
	// that month's report; LedgerScanner.Entitlements finds them in Redis.
	ExtraEntitlements func(ctx context.Context, month string) ([]string, error)
}

// Reports builds monthly usage reports from the ledger and answers quota
// questions (the admin API's usage and quota sources).
type Reports struct {
	opts ReportOptions
}

// NewReports returns Reports over opts.
func NewReports(opts ReportOptions) *Reports {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Location == nil {
		opts.Location = time.UTC
	}
	return &Reports{opts: opts}
}

// Report is the usage of one month or of several, grouped one way. It is the
// JSON document of GET /admin/v1/usage and decodes from it.
type Report struct {
	// Month is the report's month; empty when it covers several: From to To.
	Month   string `json:"month"`
	From    string `json:"from,omitempty"`
	To      string `json:"to,omitempty"`
	GroupBy string `json:"group_by"`
	// Rows are ordered by month, then by group; each carries its month.
	Rows []ReportRow `json:"rows"`
	// Totals sums every row; its grouping fields are empty, and so is its
	// month when the report covers several.
	Totals ReportRow `json:"totals"`
	// MonthTotals has one totals row per month (grouping fields empty) when
	// the report covers several months, every month of the span included.
	MonthTotals []ReportRow `json:"month_totals,omitempty"`
	// Note says when the report has no usage at all.
	Note string `json:"note,omitempty"`
	// UnpricedModels lists models with usage but no price; they cost 0.
	UnpricedModels []string `json:"unpriced_models,omitempty"`
}

// ReportRow is one group's usage. Only the field of the grouping is set
// (AccountName goes with Account).
type ReportRow struct {
	Month       string `json:"month,omitempty"`
	Team        string `json:"team,omitempty"`
	Account     string `json:"account,omitempty"`
	AccountName string `json:"account_name,omitempty"`
	Entitlement string `json:"entitlement,omitempty"`
	Model       string `json:"model,omitempty"`
	// Tier is the pricing tier (default, priority, flex, reserved, optimized, ...).
	Tier string `json:"tier,omitempty"`
	// Principal is the IAM role or user ARN (sessions and paths dropped), or
	// NoPrincipal for calls made with gateway-issued credentials.
	Principal string `json:"principal,omitempty"`
	// Requests counts settled requests; Errors counts admitted requests whose
	// upstream call failed (before the response: no charge; mid-stream: also
	// settled, so in Requests too). EstimatedRequests
	// counts settled requests whose usage Bedrock did not report: their tokens
	// are the input estimate plus the output seen.
	Requests          int64 `json:"requests"`
	Errors            int64 `json:"errors"`
	EstimatedRequests int64 `json:"estimated_requests"`
	InputTokens       int64 `json:"input_tokens"`
	OutputTokens      int64 `json:"output_tokens"`
	CacheReadTokens   int64 `json:"cache_read_tokens"`
	CacheWriteTokens  int64 `json:"cache_write_tokens"`
	// TotalTokens is the sum of the four token types.
	TotalTokens int64 `json:"total_tokens"`
	// CountedTokens is what the monthly caps were charged, per each
	// entitlement's count rule (total: input+output, no cache tokens; input;
	// output); 0 for usage settled before gateways recorded it.
	CountedTokens int64      `json:"counted_tokens"`
	CostUSD       usd.Micros `json:"cost_usd"`
}

func (r *ReportRow) add(o ReportRow) {
	r.Requests += o.Requests
	r.Errors += o.Errors
	r.EstimatedRequests += o.EstimatedRequests
	r.InputTokens += o.InputTokens
	r.OutputTokens += o.OutputTokens
	r.CacheReadTokens += o.CacheReadTokens
	r.CacheWriteTokens += o.CacheWriteTokens
	r.TotalTokens += o.TotalTokens
	r.CountedTokens += o.CountedTokens
	r.CostUSD += o.CostUSD
}

// Usage builds the report of q.Month, or of q.From to q.To, grouped by
// q.GroupBy. Bad arguments give errors wrapping ErrInvalidQuery.
func (r *Reports) Usage(ctx context.Context, q UsageQuery) (*Report, error) {
	months, err := r.months(q)
	if err != nil {
		return nil, err
	}
	groupBy := q.GroupBy
	if groupBy == "" {
		groupBy = GroupByTeam
	}
	switch groupBy {
	case GroupByTeam, GroupByAccount, GroupByEntitlement, GroupByModel, GroupByTier, GroupByPrincipal:
	default:
		return nil, fmt.Errorf("%w: group_by %q must be team, account, entitlement, model, tier or principal", ErrInvalidQuery, groupBy)
	}
	snap, err := r.snapshot()
	if err != nil {
		return nil, err
	}
	var lines []LedgerRow
	for _, month := range months {
		names, err := r.entitlementNames(ctx, snap, month)
		if err != nil {
			return nil, err
		}
		ls, err := r.opts.Ledger.Ledger(ctx, month, names)
		if err != nil {
			return nil, fmt.Errorf("building usage report: %w", err)
		}
		for _, l := range ls {
			l.Month = month
			lines = append(lines, l)
		}
	}
	return r.build(snap, months, groupBy, lines), nil
}

// months lists the months q asks for, oldest first.
func (r *Reports) months(q UsageQuery) ([]string, error) {
	parse := func(name, v string) (time.Time, error) {
		t, err := time.Parse("2006-01", v)
		if err != nil || t.Format("2006-01") != v {
			return time.Time{}, fmt.Errorf("%w: %s %q must be YYYY-MM", ErrInvalidQuery, name, v)
		}
		return t, nil
	}
	switch {
	case q.From == "" && q.To == "":
		if q.Month == "" {
			// The gateway's zone, as quota decides months: not the caller's.
			return []string{r.opts.Now().In(r.opts.Location).Format("2006-01")}, nil
		}
		if _, err := parse("month", q.Month); err != nil {
			return nil, err
		}
		return []string{q.Month}, nil
	case q.Month != "":
		return nil, fmt.Errorf("%w: give month, or from and to, not both", ErrInvalidQuery)
	case q.From == "" || q.To == "":
		return nil, fmt.Errorf("%w: from and to go together", ErrInvalidQuery)
	}
	from, err := parse("from", q.From)
	if err != nil {
		return nil, err
	}
	to, err := parse("to", q.To)
	if err != nil {
		return nil, err
	}
	if to.Before(from) {
		return nil, fmt.Errorf("%w: from %s is after to %s", ErrInvalidQuery, q.From, q.To)
	}
	var out []string
	for m := from; !m.After(to); m = m.AddDate(0, 1, 0) {
		if len(out) == MaxMonths {
			return nil, fmt.Errorf("%w: from %s to %s spans more than %d months", ErrInvalidQuery, q.From, q.To, MaxMonths)
		}
		out = append(out, m.Format("2006-01"))
	}
	return out, nil
}

func (r *Reports) snapshot() (Snapshot, error) {
	if r.opts.Snapshot == nil {
		return nil, nil
	}
	snap := r.opts.Snapshot()
	if snap == nil {
		return nil, errors.New("the state snapshot is not loaded yet")
	}
	return snap, nil
}

func (r *Reports) entitlementNames(ctx context.Context, snap Snapshot, month string) ([]string, error) {
	var names []string
	if snap != nil {
		for _, e := range snap.State().Entitlements {
			names = append(names, e.Name)
		}
	}
	if r.opts.ExtraEntitlements != nil {
		extra, err := r.opts.ExtraEntitlements(ctx, month)
		if err != nil {
			return nil, fmt.Errorf("listing entitlements with usage: %w", err)
		}
		names = append(names, extra...)
	}
	slices.Sort(names)
	return slices.Compact(names), nil
}

type groupKey struct{ month, team, account, entitlement, model, tier, principal string }

// build groups lines (each of one of months, oldest first) by groupBy.
func (r *Reports) build(snap Snapshot, months []string, groupBy string, lines []LedgerRow) *Report {
	rep := &Report{GroupBy: groupBy, Rows: []ReportRow{}}
	monthTotals := make(map[string]*ReportRow, len(months))
	for _, m := range months {
		monthTotals[m] = &ReportRow{Month: m}
	}
	groups := map[groupKey]*ReportRow{}
	unpriced := map[string]bool{}
	for _, l := range lines {
		tokens := Tokens{l.InputTokens, l.OutputTokens, l.CacheReadTokens, l.CacheWriteTokens}
		cost, ok := r.price(l.Model, l.Tier, tokens)
		if !ok && tokens != (Tokens{}) {
			unpriced[unpricedName(l.Model, l.Tier)] = true
		}
		line := ReportRow{
			Requests: l.Requests, Errors: l.Errors, EstimatedRequests: l.Estimated,
			InputTokens: l.InputTokens, OutputTokens: l.OutputTokens,
			CacheReadTokens: l.CacheReadTokens, CacheWriteTokens: l.CacheWriteTokens,
			TotalTokens:   l.InputTokens + l.OutputTokens + l.CacheReadTokens + l.CacheWriteTokens,
			CountedTokens: l.CountedTokens,
			CostUSD:       cost,
		}
		k := groupKey{month: l.Month}
		switch groupBy {
		case GroupByTeam:
			// The team recorded with the calls: moving an account later does
			// not move its past usage. Older lines have none: the team now.
			k.team = l.Team
			if k.team == "" {
				k.team = UnknownTeam
				if a, ok := snapAccount(snap, l.Account); ok {
					k.team = a.Team
				}
			}
		case GroupByAccount:
			k.account = l.Account
		case GroupByEntitlement:
			k.entitlement = l.Entitlement
		case GroupByModel:
			k.model = cmp.Or(l.Model, UnknownModel)
		case GroupByTier:
			k.tier = cmp.Or(l.Tier, bedrock.TierDefault)
		case GroupByPrincipal:
			k.principal = cmp.Or(l.Principal, NoPrincipal)
		}
		g := groups[k]
		if g == nil {
			g = &ReportRow{Month: k.month, Team: k.team, Account: k.account, Entitlement: k.entitlement, Model: k.model, Tier: k.tier, Principal: k.principal}
			if a, ok := snapAccount(snap, k.account); ok && k.account != "" {
				g.AccountName = a.Name
			}
			groups[k] = g
		}
		g.add(line)
		rep.Totals.add(line)
		if mt := monthTotals[l.Month]; mt != nil {
			mt.add(line)
		}
	}
	for _, g := range groups {
		rep.Rows = append(rep.Rows, *g)
	}
	span := months[0]
	if len(months) == 1 {
		rep.Month = months[0]
		rep.Totals.Month = months[0]
	} else {
		rep.From, rep.To = months[0], months[len(months)-1]
		span += ".." + rep.To
		for _, m := range months {
			rep.MonthTotals = append(rep.MonthTotals, *monthTotals[m])
		}
	}
	slices.SortFunc(rep.Rows, func(a, b ReportRow) int {
		return cmpStrings(a.Month, b.Month, a.Team, b.Team, a.Account, b.Account, a.Entitlement, b.Entitlement, a.Model, b.Model, a.Tier, b.Tier, a.Principal, b.Principal)
	})
	for m := range unpriced {
		rep.UnpricedModels = append(rep.UnpricedModels, m)
	}
	slices.Sort(rep.UnpricedModels)
	if len(lines) == 0 {
		rep.Note = "no usage recorded for " + span
	}
	return rep
}

// unpricedName names a model, and its tier unless default, in unpriced_models.
func unpricedName(model, tier string) string {
	if tier == "" || tier == bedrock.TierDefault {
		return model
	}
	return model + " (" + tier + ")"
}

func (r *Reports) price(model, tier string, t Tokens) (usd.Micros, bool) {
	if r.opts.Prices == nil {
		return 0, false
	}
	return r.opts.Prices.Cost(model, tier, t)
}

func snapAccount(snap Snapshot, id string) (Account, bool) {
	if snap == nil || id == "" {
		return Account{}, false
	}
	return snap.Account(id)
}

// cmpStrings compares pairs in order: (a0, b0), (a1, b1), ...
func cmpStrings(pairs ...string) int {
	for i := 0; i+1 < len(pairs); i += 2 {
		if c := strings.Compare(pairs[i], pairs[i+1]); c != 0 {
			return c
		}
	}
	return 0
}

// WriteCSV writes rep with the header CSVHeader: for each month of the
// report, its group rows in the report's order, then the month's totals row
// (the month, every grouping column empty). Columns not in the grouping are
// empty.
func WriteCSV(w io.Writer, rep *Report) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(strings.Split(CSVHeader, ",")); err != nil {
		return fmt.Errorf("writing usage CSV: %w", err)
	}
	totals := rep.MonthTotals
	if len(totals) == 0 {
		totals = []ReportRow{rep.Totals}
	}
	rows := rep.Rows
	for _, t := range totals {
		for len(rows) > 0 && rows[0].Month <= t.Month {
			if err := cw.Write(csvRecord(rows[0])); err != nil {
				return fmt.Errorf("writing usage CSV: %w", err)
			}
			rows = rows[1:]
		}
		if err := cw.Write(csvRecord(ReportRow{Month: t.Month, Requests: t.Requests, Errors: t.Errors,
			EstimatedRequests: t.EstimatedRequests, InputTokens: t.InputTokens, OutputTokens: t.OutputTokens,
			CacheReadTokens: t.CacheReadTokens, CacheWriteTokens: t.CacheWriteTokens, TotalTokens: t.TotalTokens,
			CountedTokens: t.CountedTokens, CostUSD: t.CostUSD})); err != nil {
			return fmt.Errorf("writing usage CSV: %w", err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("writing usage CSV: %w", err)
	}
	return nil
}

func csvRecord(r ReportRow) []string {
	i := strconv.FormatInt
	return []string{r.Month, r.Team, r.Account, r.Entitlement, r.Model,
		i(r.Requests, 10), i(r.InputTokens, 10), i(r.OutputTokens, 10),
		i(r.CacheReadTokens, 10), i(r.CacheWriteTokens, 10), i(r.TotalTokens, 10), r.CostUSD.String(),
		i(r.Errors, 10), i(r.CountedTokens, 10), i(r.EstimatedRequests, 10), r.Tier, r.Principal}
}
