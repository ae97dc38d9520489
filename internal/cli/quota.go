package cli

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/bedrock-gateway/gateway/internal/report"
	"github.com/bedrock-gateway/gateway/internal/state"
)

func runQuota(ctx context.Context, args []string, env Env) error {
	fs, common := newFlags("quota", "quota [ENTITLEMENT] [flags]\n\n"+
		"Shows each monthly cap of an entitlement (or of every entitlement with one): its limit,\n"+
		"the tokens used and reserved by requests in flight, what remains, and when it resets.\n"+
		"Without ENTITLEMENT, -o json and yaml give {\"quotas\": [report, ...]}.", env, readFormats)
	pos, err := parse(fs, args)
	if err != nil {
		return done(err)
	}
	if len(pos) > 1 {
		return usageError(fs, "quota: at most one ENTITLEMENT, got %d", len(pos))
	}
	c, err := common.client(env)
	if err != nil {
		return err
	}
	var names []string
	if len(pos) == 1 {
		names = pos
	} else {
		var res struct {
			Entitlements []state.Entitlement `json:"entitlements"`
		}
		if _, err := c.getJSON(ctx, "/admin/v1/entitlements", nil, &res); err != nil {
			return err
		}
		for _, e := range res.Entitlements {
			if capped(&e) {
				names = append(names, e.Name)
			}
		}
	}
	reports := make([]*report.QuotaReport, 0, len(names))
	var raw []byte
	for _, n := range names {
		var rep report.QuotaReport
		raw, err = c.getJSON(ctx, "/admin/v1/entitlements/"+pathEscape(n)+"/quota", nil, &rep)
		if err != nil {
			return fmt.Errorf("quota of %s: %w", n, err)
		}
		reports = append(reports, &rep)
	}
	if len(pos) == 0 {
		if raw, err = json.Marshal(struct {
			Quotas []*report.QuotaReport `json:"quotas"`
		}{reports}); err != nil {
			return err
		}
	}
	if ok, err := common.printRaw(env.Stdout, raw); ok {
		return err
	}
	t := table{header: []string{"ENTITLEMENT", "LEVEL", "TARGET", "LIMIT", "USED", "RESERVED", "REMAINING", "USED_%", "RESETS_AT"},
		empty: "no monthly caps"}
	for _, r := range reports {
		for _, cp := range r.Caps {
			t.rows = append(t.rows, []any{r.Entitlement, cp.Level, cp.Target, count(cp.Limit), count(cp.Used), count(cp.Reserved),
				count(cp.Remaining), cp.PercentUsed, r.ResetAt})
		}
	}
	return common.printRows(env.Stdout, t)
}

// capped says whether an entitlement has a monthly cap for the quota report
// to show: its own, a share's or every account's.
func capped(e *state.Entitlement) bool {
	if e.Limits.MonthlyTokens > 0 || e.Limits.AccountMonthlyTokens > 0 {
		return true
	}
	for _, s := range e.Shares {
		if s.MonthlyTokens > 0 {
			return true
		}
	}
	return false
}
