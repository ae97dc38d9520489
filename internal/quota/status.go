package quota

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bedrock-gateway/gateway/internal/bedrock"
)

// CapStatus is one cap's state in the current month.
type CapStatus struct {
	Level  Level
	Target string
	Limit  int64
	Used   int64 // settled tokens
	// Reserved is held by requests in flight; expired reservations (a
	// crashed replica's) are purged before reading.
	Reserved  int64
	Remaining int64 // Limit-Used-Reserved, not below 0; -1 when Limit is 0
	Month     string
	ResetAt   time.Time
}

// Status reads the caps of entitlement in the current month (by Redis time).
func (l *Limiter) Status(ctx context.Context, entitlement string, caps []Cap) ([]CapStatus, error) {
	cctx, cancel := context.WithTimeout(ctx, l.opts.Timeout)
	defer cancel()
	now, err := l.client.Time(cctx).Result()
	if err != nil {
		return nil, fmt.Errorf("reading quota status: %w", err)
	}
	m := monthOf(now.Add(l.redisOffset()), l.opts.Location)
	k := l.keysFor(entitlement)
	var vals []int64
	if len(caps) > 0 {
		keys := make([]string, 0, 2*len(caps))
		for _, c := range caps {
			keys = append(keys, k.capHash(m.key, c), k.capZset(m.key, c))
		}
		// The script purges expired reservations first, so a crashed
		// replica's reservation stops counting when its TTL is up, not when
		// the next request happens to purge it.
		vals, err = l.status.Run(cctx, l.client, keys, l.timeOffsetMs()).Int64Slice()
		if err != nil {
			return nil, fmt.Errorf("reading quota status: %w", err)
		}
		if len(vals) != 2*len(caps) {
			return nil, fmt.Errorf("reading quota status: %w: %v", errBadResult, vals)
		}
	}
	out := make([]CapStatus, len(caps))
	for i, c := range caps {
		st := CapStatus{Level: c.Level, Target: c.Target, Limit: c.Limit, Month: m.key, ResetAt: m.end,
			Used: vals[2*i], Reserved: vals[2*i+1], Remaining: -1}
		if c.Limit > 0 {
			st.Remaining = max(0, c.Limit-st.Used-st.Reserved)
		}
		out[i] = st
	}
	return out, nil
}

// LedgerRow is one month's usage of one account of one entitlement through one model.
type LedgerRow struct {
	Month, Entitlement, Account, Model                                             string
	Tier                                                                           string // pricing tier; "default" for lines written without one
	Requests, Errors, InputTokens, OutputTokens, CacheReadTokens, CacheWriteTokens int64
	// Estimated counts the settled requests whose usage was estimated.
	Estimated int64
	// Team is the account's team when the calls were made; empty for lines
	// written before teams were recorded.
	Team string
	// CountedTokens is what the caps were charged, per the entitlement's
	// count rule; 0 for usage settled before it was recorded.
	CountedTokens int64
	// Principal is the IAM principal (canonical role or user ARN) that made
	// the calls; empty for gateway-issued credentials.
	Principal string
}

// Ledger returns the month's ledger rows of the given entitlements, sorted by
// entitlement, account, model, tier, team and principal.
func (l *Limiter) Ledger(ctx context.Context, month string, entitlements []string) ([]LedgerRow, error) {
	if _, ok := parseMonth(month, l.opts.Location); !ok {
		return nil, fmt.Errorf("reading ledger: bad month %q (want YYYY-MM)", month)
	}
	if len(entitlements) == 0 {
		return nil, nil
	}
	cctx, cancel := context.WithTimeout(ctx, l.opts.Timeout)
	defer cancel()
	pipe := l.client.Pipeline()
	cmds := make([]*redis.MapStringStringCmd, len(entitlements))
	for i, e := range entitlements {
		cmds[i] = pipe.HGetAll(cctx, l.keysFor(e).ledger(month))
	}
	if _, err := pipe.Exec(cctx); err != nil {
		return nil, fmt.Errorf("reading ledger: %w", err)
	}
	type rowKey struct {
		ent string
		ledgerKey
	}
	rows := map[rowKey]*LedgerRow{}
	for i, e := range entitlements {
		for f, v := range cmds[i].Val() {
			k, metric, ok := parseLedgerField(f)
			n, err := strconv.ParseInt(v, 10, 64)
			if !ok || err != nil {
				l.log.Warn("skipping malformed ledger field", "entitlement", e, "field", f)
				continue
			}
			if k.Tier == "" {
				k.Tier = bedrock.TierDefault
			}
			rk := rowKey{e, k}
			r := rows[rk]
			if r == nil {
				r = &LedgerRow{Month: month, Entitlement: e, Account: k.Account, Model: k.Model, Tier: k.Tier, Team: k.Team, Principal: k.Principal}
				rows[rk] = r
			}
			switch metric {
			case metricRequests:
				r.Requests += n
			case metricErrors:
				r.Errors += n
			case metricEstimated:
				r.Estimated += n
			case metricInput:
				r.InputTokens += n
			case metricOutput:
				r.OutputTokens += n
			case metricCacheRead:
				r.CacheReadTokens += n
			case metricCacheWrite:
				r.CacheWriteTokens += n
			case metricCounted:
				r.CountedTokens += n
			}
		}
	}
	out := make([]LedgerRow, 0, len(rows))
	for _, r := range rows {
		out = append(out, *r)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Entitlement != b.Entitlement {
			return a.Entitlement < b.Entitlement
		}
		if a.Account != b.Account {
			return a.Account < b.Account
		}
		if a.Model != b.Model {
			return a.Model < b.Model
		}
		if a.Tier != b.Tier {
			return a.Tier < b.Tier
		}
		if a.Team != b.Team {
			return a.Team < b.Team
		}
		return a.Principal < b.Principal
	})
	return out, nil
}
