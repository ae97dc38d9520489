package quota

import (
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

// ledgerField is "<account>|<model>|<metric>".
func ledgerPrefix(account, model string) string { return account + "|" + model + "|" }

// parseLedgerField splits a ledger field into account, model and metric.
// Account IDs never contain '|'; the metric is after the last one.
func parseLedgerField(f string) (account, model, metric string, ok bool) {
	i := strings.IndexByte(f, '|')
	j := strings.LastIndexByte(f, '|')
	if i < 0 || j <= i {
		return "", "", "", false
	}
	return f[:i], f[i+1 : j], f[j+1:], true
}
