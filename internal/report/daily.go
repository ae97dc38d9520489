package report

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/bedrock-gateway/gateway/internal/usd"
)

// DayLedger is the per-day ledger of one day: rows as in the monthly ledger.
type DayLedger struct {
	Date string // YYYY-MM-DD
	Rows []LedgerRow
}

// DailyLedgerReader reads the per-day ledger of every day of a month, oldest
// first (the server adapts quota.Limiter).
type DailyLedgerReader interface {
	LedgerDays(ctx context.Context, month string, entitlements []string) ([]DayLedger, error)
}

// DailyQuery asks for the usage of each day of one month, grouped one way.
type DailyQuery struct {
	Month   string // YYYY-MM; empty means the current month in Location
	GroupBy string // team, account, entitlement or model; empty means team
}

// DailyReport is the usage of each day of a month: the JSON document of GET
// /admin/v1/usage/daily, made for a chart of tokens per day. Every day of the
// month is listed, those without usage with no groups.
type DailyReport struct {
	Month   string     `json:"month"`
	GroupBy string     `json:"group_by"`
	Days    []DayUsage `json:"days"`
}

// DayUsage is one day's usage per group, groups ordered by key.
type DayUsage struct {
	Date   string       `json:"date"`
	Groups []DailyGroup `json:"groups"`
}

// DailyGroup is one group's usage on one day. Key is the team, account,
// entitlement or model, as the report's group_by says.
type DailyGroup struct {
	Key                   string     `json:"key"`
	InputTokens           int64      `json:"input_tokens"`
	OutputTokens          int64      `json:"output_tokens"`
	CacheReadInputTokens  int64      `json:"cache_read_input_tokens"`
	CacheWriteInputTokens int64      `json:"cache_write_input_tokens"`
	Requests              int64      `json:"requests"`
	CostUSD               usd.Micros `json:"cost_usd"`
}

// Daily builds the per-day report of q.Month, grouped as the monthly report
// groups (a team is the one recorded with the calls), priced the same way.
// Bad arguments give errors wrapping ErrInvalidQuery.
func (r *Reports) Daily(ctx context.Context, q DailyQuery) (*DailyReport, error) {
	if r.opts.Days == nil {
		return nil, errors.New("the per-day ledger is not available")
	}
	month := q.Month
	if month == "" {
		month = r.opts.Now().In(r.opts.Location).Format("2006-01")
	} else if t, err := time.Parse("2006-01", month); err != nil || t.Format("2006-01") != month {
		return nil, fmt.Errorf("%w: month %q must be YYYY-MM", ErrInvalidQuery, month)
	}
	groupBy := q.GroupBy
	if groupBy == "" {
		groupBy = GroupByTeam
	}
	switch groupBy {
	case GroupByTeam, GroupByAccount, GroupByEntitlement, GroupByModel:
	default:
		return nil, fmt.Errorf("%w: group_by %q must be team, account, entitlement or model", ErrInvalidQuery, groupBy)
	}
	snap, err := r.snapshot()
	if err != nil {
		return nil, err
	}
	names, err := r.entitlementNames(ctx, snap, month)
	if err != nil {
		return nil, err
	}
	days, err := r.opts.Days.LedgerDays(ctx, month, names)
	if err != nil {
		return nil, fmt.Errorf("building daily usage report: %w", err)
	}
	rep := &DailyReport{Month: month, GroupBy: groupBy, Days: make([]DayUsage, 0, len(days))}
	for _, d := range days {
		for i := range d.Rows {
			d.Rows[i].Month = month
		}
		// The monthly report's grouping, team resolution and prices, per day.
		day := r.build(snap, []string{month}, groupBy, d.Rows)
		du := DayUsage{Date: d.Date, Groups: make([]DailyGroup, 0, len(day.Rows))}
		for _, row := range day.Rows {
			key := row.Team
			switch groupBy {
			case GroupByAccount:
				key = row.Account
			case GroupByEntitlement:
				key = row.Entitlement
			case GroupByModel:
				key = row.Model
			}
			du.Groups = append(du.Groups, DailyGroup{
				Key: key, InputTokens: row.InputTokens, OutputTokens: row.OutputTokens,
				CacheReadInputTokens: row.CacheReadTokens, CacheWriteInputTokens: row.CacheWriteTokens,
				Requests: row.Requests, CostUSD: row.CostUSD,
			})
		}
		rep.Days = append(rep.Days, du)
	}
	return rep, nil
}
