package server

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bedrock-gateway/gateway/internal/authz"
	"github.com/bedrock-gateway/gateway/internal/metering"
	"github.com/bedrock-gateway/gateway/internal/quota"
	"github.com/bedrock-gateway/gateway/internal/report"
	"github.com/bedrock-gateway/gateway/internal/state"
	"github.com/bedrock-gateway/gateway/internal/usd"
)

// newReports builds the usage and quota reports over the quota ledger, the
// snapshot served now and the price table. Package report reads them through
// its own small interfaces (so the CLI, which decodes reports, depends on
// none of quota, authz and metering); the adapters below implement them.
func newReports(lim *quota.Limiter, snap func() *authz.Snapshot, prices *metering.PriceTable,
	loc *time.Location, rdb redis.UniversalClient) *report.Reports {
	return report.NewReports(report.ReportOptions{
		Ledger: limiterReports{lim}, Status: limiterReports{lim}, Days: limiterReports{lim},
		Snapshot: func() report.Snapshot {
			if sn := snap(); sn != nil {
				return snapshotReports{sn}
			}
			return nil // an untyped nil: reports fail until the first snapshot
		},
		Prices: priceReports{prices}, Location: loc,
		// The quota limiter keeps its keys under the default prefix.
		ExtraEntitlements: (&report.LedgerScanner{Client: rdb}).Entitlements,
	})
}

// limiterReports reads the ledger and the caps' status of a quota.Limiter
// for the reports.
type limiterReports struct{ lim *quota.Limiter }

func (l limiterReports) Ledger(ctx context.Context, month string, entitlements []string) ([]report.LedgerRow, error) {
	rows, err := l.lim.Ledger(ctx, month, entitlements)
	if err != nil {
		return nil, err
	}
	out := make([]report.LedgerRow, len(rows))
	for i, r := range rows {
		out[i] = report.LedgerRow(r) // the same fields: a new one fails to compile here
	}
	return out, nil
}

func (l limiterReports) LedgerDays(ctx context.Context, month string, entitlements []string) ([]report.DayLedger, error) {
	days, err := l.lim.LedgerDays(ctx, month, entitlements)
	if err != nil {
		return nil, err
	}
	out := make([]report.DayLedger, len(days))
	for i, d := range days {
		out[i].Date = d.Date
		out[i].Rows = make([]report.LedgerRow, len(d.Rows))
		for j, r := range d.Rows {
			out[i].Rows[j] = report.LedgerRow(r)
		}
	}
	return out, nil
}

func (l limiterReports) Status(ctx context.Context, entitlement string, caps []report.Cap) ([]report.CapStatus, error) {
	in := make([]quota.Cap, len(caps))
	for i, c := range caps {
		in[i] = quota.Cap{Level: quota.Level(c.Level), Target: c.Target, Limit: c.Limit}
	}
	sts, err := l.lim.Status(ctx, entitlement, in)
	if err != nil {
		return nil, err
	}
	out := make([]report.CapStatus, len(sts))
	for i, s := range sts {
		out[i] = report.CapStatus{Level: string(s.Level), Target: s.Target, Limit: s.Limit, Used: s.Used,
			Reserved: s.Reserved, Remaining: s.Remaining, Month: s.Month, ResetAt: s.ResetAt}
	}
	return out, nil
}

// snapshotReports shows the reports the state and the accounts of a snapshot.
type snapshotReports struct{ snap *authz.Snapshot }

func (s snapshotReports) State() *state.State { return s.snap.State() }

func (s snapshotReports) Account(id string) (report.Account, bool) {
	a, ok := s.snap.Account(id)
	if !ok {
		return report.Account{}, false
	}
	return report.Account{Team: a.Team, Name: a.Name}, true
}

// priceReports prices the reports' tokens with a price table (nil: nothing
// is priced).
type priceReports struct{ table *metering.PriceTable }

func (p priceReports) Cost(model, tier string, t report.Tokens) (usd.Micros, bool) {
	price, ok := p.table.LookupTier(model, tier)
	if !ok {
		return 0, false
	}
	return price.Cost(metering.TokenCounts(t)), true
}
