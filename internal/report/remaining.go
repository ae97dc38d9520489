package report

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"
)

// QuotaReport is what remains of one entitlement's monthly caps: the JSON
// document of GET /admin/v1/entitlements/{name}/quota.
type QuotaReport struct {
	Entitlement string `json:"entitlement"`
	Month       string `json:"month"`
	// ResetAt is the start of the next month, when every cap resets.
	ResetAt time.Time `json:"reset_at,omitzero"`
	// Caps lists the entitlement's own cap, each share cap, and the account
	// cap of every account with usage this month (caps with a limit only).
	Caps []CapReport `json:"caps"`
}

// CapReport is one cap's state.
type CapReport struct {
	Level  string `json:"level"`
	Target string `json:"target"`
	Limit  int64  `json:"limit"`
	Used   int64  `json:"used"`
	// Reserved is held by requests in flight.
	Reserved  int64 `json:"reserved"`
	Remaining int64 `json:"remaining"`
	// PercentUsed is Used over Limit, in percent with one decimal.
	PercentUsed float64 `json:"percent_used"`
}

// Quota reads the current month's state of every cap of entitlement. An
// unknown entitlement gives an error wrapping ErrInvalidQuery.
func (r *Reports) Quota(ctx context.Context, entitlement string) (*QuotaReport, error) {
	if r.opts.Status == nil {
		return nil, errors.New("quota status is not configured")
	}
	snap, err := r.snapshot()
	if err != nil {
		return nil, err
	}
	if snap == nil {
		return nil, errors.New("the state snapshot is not configured")
	}
	idx := -1
	st := snap.State()
	for i := range st.Entitlements {
		if st.Entitlements[i].Name == entitlement {
			idx = i
			break
		}
	}
	if idx < 0 {
		return nil, fmt.Errorf("%w: entitlement %q does not exist", ErrInvalidQuery, entitlement)
	}
	e := st.Entitlements[idx]
	var caps []Cap
	if e.Limits.MonthlyTokens > 0 {
		caps = append(caps, Cap{Level: LevelEntitlement, Target: e.Name, Limit: e.Limits.MonthlyTokens})
	}
	for _, s := range e.Shares {
		if s.MonthlyTokens > 0 {
			caps = append(caps, Cap{Level: LevelShare, Target: s.Target, Limit: s.MonthlyTokens})
		}
	}
	month := r.opts.Now().In(r.opts.Location).Format("2006-01")
	if e.Limits.AccountMonthlyTokens > 0 {
		lines, err := r.opts.Ledger.Ledger(ctx, month, []string{e.Name})
		if err != nil {
			return nil, fmt.Errorf("reading quota: %w", err)
		}
		seen := map[string]bool{}
		for _, l := range lines {
			if l.Account != "" && !seen[l.Account] {
				seen[l.Account] = true
				caps = append(caps, Cap{Level: LevelAccount, Target: l.Account, Limit: e.Limits.AccountMonthlyTokens})
			}
		}
	}
	rep := &QuotaReport{Entitlement: e.Name, Month: month, Caps: []CapReport{}}
	if len(caps) == 0 {
		return rep, nil
	}
	sts, err := r.opts.Status.Status(ctx, e.Name, caps)
	if err != nil {
		return nil, fmt.Errorf("reading quota: %w", err)
	}
	for _, s := range sts {
		rep.Month, rep.ResetAt = s.Month, s.ResetAt
		c := CapReport{Level: s.Level, Target: s.Target, Limit: s.Limit, Used: s.Used,
			Reserved: s.Reserved, Remaining: s.Remaining}
		if s.Limit > 0 {
			c.PercentUsed = math.Round(float64(s.Used)*1000/float64(s.Limit)) / 10
		}
		rep.Caps = append(rep.Caps, c)
	}
	return rep, nil
}
