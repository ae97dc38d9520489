package quota

import (
	"net/url"
	"strconv"
	"strings"
	"time"
)

// keys builds key names; every key of one entitlement shares its hash tag.
type keys struct{ base string }

func (l *Limiter) keysFor(entitlement string) keys {
	return keys{base: l.opts.Prefix + ":{ent:" + entitlement + "}:"}
}

func (k keys) capHash(month string, c Cap) string {
	return k.base + "cap:" + month + ":" + string(c.Level) + ":" + c.Target
}

func (k keys) capZset(month string, c Cap) string {
	return k.base + "capres:" + month + ":" + string(c.Level) + ":" + c.Target
}

func (k keys) rpm(account string) string  { return k.base + "rpm:" + account }
func (k keys) tpm(account string) string  { return k.base + "tpm:" + account }
func (k keys) ledger(month string) string { return k.base + "ledger:" + month }
func (k keys) alerts(month string) string { return k.base + "alerts:" + month }
func (k keys) settled(id string) string   { return k.base + "settled:" + id }

// reservationMember is a reservation's member in its caps' zsets: the tokens
// ride along so a purge needs no lookup per member.
func reservationMember(id string, tokens int64) string {
	return id + ":" + strconv.FormatInt(tokens, 10)
}

// month is one calendar month in the configured zone.
type month struct {
	key        string // "2026-11"
	start, end time.Time
}

func monthOf(t time.Time, loc *time.Location) month {
	t = t.In(loc)
	start := time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, loc)
	return month{key: start.Format("2006-01"), start: start, end: start.AddDate(0, 1, 0)}
}

// parseMonth parses "2006-01" into the month in loc.
func parseMonth(s string, loc *time.Location) (month, bool) {
	t, err := time.ParseInLocation("2006-01", s, loc)
	if err != nil {
		return month{}, false
	}
	return monthOf(t, loc), true
}

// boundaryWindow is how close to a month boundary the local clock must be for
// the neighbouring month to be offered to the script as well.
const boundaryWindow = 24 * time.Hour

// candidates lists the months the script may pick from given the local
// clock: the month of now, plus the neighbour when now is near a boundary.
func candidates(now time.Time, loc *time.Location) []month {
	m := monthOf(now, loc)
	out := []month{m}
	if now.Sub(m.start) < boundaryWindow {
		out = append(out, monthOf(m.start.Add(-time.Hour), loc))
	}
	if m.end.Sub(now) <= boundaryWindow {
		out = append(out, monthOf(m.end, loc))
	}
	return out
}

// The metrics of a ledger line: the last part of its fields. settle.lua
// writes the same names as string literals (Lua cannot see these);
// TestSettleScriptWritesLedgerMetrics checks it has each one.
const (
	metricRequests   = "requests"    // settled calls
	metricErrors     = "errors"      // released calls, and settled calls that failed mid-stream
	metricEstimated  = "estimated"   // settled calls whose usage was estimated
	metricInput      = "input"       // input tokens
	metricOutput     = "output"      // output tokens
	metricCacheRead  = "cache_read"  // cache read input tokens
	metricCacheWrite = "cache_write" // cache write input tokens
	// metricCounted is the tokens the caps were charged, per the
	// entitlement's count rule (the settle script's counted argument).
	metricCounted = "counted"
)

// ledgerKey is what one ledger line is counted under, besides its metric.
type ledgerKey struct {
	Account, Team, Principal, Model, Tier string
}

// prefix is the ledger field without its metric. A field is
// "<account>|<model>|<metric>" for the default tier and
// "<account>|<model>|<tier>:<metric>" for any other pricing tier, so the
// ledger written before tiers existed reads as the default tier, and the
// fields of the default tier are unchanged. The account's team when the call
// was made follows the account as "<account>@<team, query-escaped>", so a
// report groups past usage by the team it was made for; then, for callers
// with an IAM identity, "#<principal ARN, query-escaped>". The escaping keeps
// '|', ':', '@' and '#' out of both. Lines without a team or principal
// (written before they were recorded, or by gateway-issued credentials) read
// with them empty.
func (k ledgerKey) prefix() string {
	account := k.Account
	if k.Team != "" {
		account += "@" + url.QueryEscape(k.Team)
	}
	if k.Principal != "" {
		account += "#" + url.QueryEscape(k.Principal)
	}
	if k.Tier == "" {
		return account + "|" + k.Model + "|"
	}
	return account + "|" + k.Model + "|" + k.Tier + ":"
}

// parseLedgerField splits a ledger field into its key (team and principal
// empty when not recorded, tier empty for the default tier's fields) and
// metric. Account IDs never contain '|', '@' or '#'; the tier and metric are
// after the last '|', and tiers never contain ':'.
func parseLedgerField(f string) (k ledgerKey, metric string, ok bool) {
	i := strings.IndexByte(f, '|')
	j := strings.LastIndexByte(f, '|')
	if i < 0 || j <= i {
		return ledgerKey{}, "", false
	}
	metric = f[j+1:]
	if c := strings.IndexByte(metric, ':'); c >= 0 {
		if c == 0 {
			return ledgerKey{}, "", false
		}
		k.Tier, metric = metric[:c], metric[c+1:]
	}
	account := f[:i]
	if c := strings.IndexByte(account, '#'); c >= 0 {
		p, ok := unescapeLedgerPart(account[c+1:])
		if !ok {
			return ledgerKey{}, "", false
		}
		account, k.Principal = account[:c], p
	}
	if c := strings.IndexByte(account, '@'); c >= 0 {
		t, ok := unescapeLedgerPart(account[c+1:])
		if !ok {
			return ledgerKey{}, "", false
		}
		account, k.Team = account[:c], t
	}
	k.Account, k.Model = account, f[i+1:j]
	return k, metric, true
}

// unescapeLedgerPart reverses the query escaping of a team or principal,
// refusing anything prefix would not have written.
func unescapeLedgerPart(raw string) (string, bool) {
	v, err := url.QueryUnescape(raw)
	if err != nil || v == "" || url.QueryEscape(v) != raw {
		return "", false
	}
	return v, true
}
