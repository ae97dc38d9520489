package quota

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestCandidates(t *testing.T) {
	t.Parallel()
	ny := mustZone(t, "America/New_York")
	tests := []struct {
		name string
		now  time.Time
		loc  *time.Location
		want []string
	}{
		{"mid month", time.Date(2026, 11, 15, 12, 0, 0, 0, time.UTC), time.UTC, []string{"2026-11"}},
		{"first hours", time.Date(2026, 11, 1, 3, 0, 0, 0, time.UTC), time.UTC, []string{"2026-11", "2026-10"}},
		{"last hours", time.Date(2026, 11, 30, 23, 0, 0, 0, time.UTC), time.UTC, []string{"2026-11", "2026-12"}},
		{"year end", time.Date(2026, 12, 31, 23, 59, 0, 0, time.UTC), time.UTC, []string{"2026-12", "2027-01"}},
		// 04:30 UTC on 1 December is still 30 November in New York.
		{"zone", time.Date(2026, 12, 1, 4, 30, 0, 0, time.UTC), ny, []string{"2026-11", "2026-12"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var got []string
			for _, m := range candidates(tt.now, tt.loc) {
				got = append(got, m.key)
				if !m.end.Equal(m.start.AddDate(0, 1, 0)) || m.start.Day() != 1 || m.start.Hour() != 0 {
					t.Errorf("month %s spans %v..%v", m.key, m.start, m.end)
				}
			}
			if strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Errorf("candidates %v, want %v", got, tt.want)
			}
		})
	}
}

func TestMonthOfAcrossDST(t *testing.T) {
	t.Parallel()
	ny := mustZone(t, "America/New_York")
	// November in New York has 30 days and one extra hour (DST ends).
	m := monthOf(time.Date(2026, 11, 10, 0, 0, 0, 0, ny), ny)
	if got := m.end.Sub(m.start); got != (30*24+1)*time.Hour {
		t.Errorf("November 2026 in New York lasts %v", got)
	}
	if m.end.In(ny).Format(time.DateTime) != "2026-12-01 00:00:00" {
		t.Errorf("end %v", m.end.In(ny))
	}
}

func TestEffectiveCaps(t *testing.T) {
	t.Parallel()
	got := effectiveCaps([]Cap{
		{Level: LevelEntitlement, Target: "e", Limit: 0},
		{Level: LevelAccount, Target: "1", Limit: 5},
		{Level: LevelAccount, Target: "1", Limit: 9},
		{Level: LevelShare, Target: "1", Limit: 7, Thresholds: []int{0, 50, -1, 100}},
	})
	if len(got) != 2 || got[0].Limit != 5 || got[1].Level != LevelShare || !slices.Equal(got[1].Thresholds, []int{50, 100}) {
		t.Errorf("effective caps %+v", got)
	}
}

func TestIsUnreachable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"refused", &net.OpError{Op: "dial", Err: errors.New("connection refused")}, true},
		{"eof", io.EOF, true},
		{"timeout", context.DeadlineExceeded, true},
		{"closed client", redis.ErrClosed, true},
		{"loading", redisErr("LOADING Redis is loading the dataset in memory"), true},
		{"cluster down", redisErr("CLUSTERDOWN The cluster is down"), true},
		{"script bug", redisErr("ERR user_script:12: attempt to compare nil with number"), false},
		{"wrong type", redisErr("WRONGTYPE Operation against a key holding the wrong kind of value"), false},
		{"bad result", fmt.Errorf("%w: x", errBadResult), false},
		{"nil", nil, false},
	}
	for _, tt := range tests {
		if got := isUnreachable(tt.err); got != tt.want {
			t.Errorf("%s: isUnreachable = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// redisErr builds a server reply error the way go-redis types them.
type redisErr string

func (e redisErr) Error() string { return string(e) }
func (redisErr) RedisError()     {}

func TestCapExceededMessage(t *testing.T) {
	t.Parallel()
	reset := time.Date(2026, 12, 1, 5, 0, 0, 0, time.UTC)
	e := &CapExceededError{Entitlement: "support", Level: LevelAccount, Target: "222222222222",
		Limit: 1000, Used: 900, Reserved: 100, ResetAt: reset}
	want := "monthly token cap of account 222222222222 on entitlement support is spent (1000 of 1000 tokens used); it resets at 2026-12-01T05:00:00Z"
	if e.Error() != want {
		t.Errorf("message\n%s\nwant\n%s", e.Error(), want)
	}
}

func TestLedgerField(t *testing.T) {
	t.Parallel()
	const arn = "arn:aws:bedrock:us-east-1::foundation-model/x"
	const role = "arn:aws:iam::222222222222:role/support-bot"
	for _, tc := range []struct {
		field  string
		key    ledgerKey
		metric string
	}{
		{ledgerKey{Account: "222222222222", Model: arn}.prefix() + metricCacheRead, ledgerKey{Account: "222222222222", Model: arn}, metricCacheRead},
		{ledgerKey{Account: "222222222222", Model: arn, Tier: "priority"}.prefix() + metricInput, ledgerKey{Account: "222222222222", Model: arn, Tier: "priority"}, metricInput},
		{ledgerKey{Account: "222222222222", Model: "m", Tier: "priority+optimized"}.prefix() + metricRequests, ledgerKey{Account: "222222222222", Model: "m", Tier: "priority+optimized"}, metricRequests},
		// A team may hold any printable text, the separators included.
		{ledgerKey{Account: "222222222222", Team: "dev", Model: "m"}.prefix() + metricCounted, ledgerKey{Account: "222222222222", Team: "dev", Model: "m"}, metricCounted},
		{ledgerKey{Account: "222222222222", Team: "R&D | a@b: c#1", Model: arn, Tier: "flex"}.prefix() + metricOutput, ledgerKey{Account: "222222222222", Team: "R&D | a@b: c#1", Model: arn, Tier: "flex"}, metricOutput},
		{ledgerKey{Account: "222222222222", Team: "équipe", Model: "m"}.prefix() + metricErrors, ledgerKey{Account: "222222222222", Team: "équipe", Model: "m"}, metricErrors},
		// The IAM principal, with or without a team; role names may hold '@'.
		{ledgerKey{Account: "222222222222", Team: "dev", Principal: role, Model: arn}.prefix() + metricInput, ledgerKey{Account: "222222222222", Team: "dev", Principal: role, Model: arn}, metricInput},
		{ledgerKey{Account: "222222222222", Principal: "arn:aws:iam::222222222222:user/a@b", Model: "m", Tier: "flex"}.prefix() + metricInput, ledgerKey{Account: "222222222222", Principal: "arn:aws:iam::222222222222:user/a@b", Model: "m", Tier: "flex"}, metricInput},
		// Written before tiers existed: the default tier.
		{"222222222222|anthropic.claude-3-5-haiku-20241022-v1:0|output", ledgerKey{Account: "222222222222", Model: "anthropic.claude-3-5-haiku-20241022-v1:0"}, "output"},
	} {
		k, metric, ok := parseLedgerField(tc.field)
		if !ok || k != tc.key || metric != tc.metric {
			t.Errorf("%q parsed %+v %q %v", tc.field, k, metric, ok)
		}
	}
	for _, bad := range []string{"", "x", "a|b", "a|m|:input", "a@|m|input", "a@%zz|m|input", "a@%41|m|input", "a#|m|input", "a@t#%zz|m|input", "a#p@t|m|input"} {
		if _, _, ok := parseLedgerField(bad); ok {
			t.Errorf("%q parsed", bad)
		}
	}
}

// TestSettleScriptWritesLedgerMetrics: the settle script writes the ledger
// metrics by name, as Lua string literals; each must be one Ledger reads.
func TestSettleScriptWritesLedgerMetrics(t *testing.T) {
	t.Parallel()
	for _, m := range []string{metricRequests, metricErrors, metricEstimated, metricInput, metricOutput, metricCacheRead, metricCacheWrite, metricCounted} {
		if !strings.Contains(settleLua, "'"+m+"'") {
			t.Errorf("settle.lua does not write the ledger metric '%s'", m)
		}
	}
}

func FuzzParseLedgerField(f *testing.F) {
	f.Add("222222222222|anthropic.claude|requests")
	f.Add("222222222222|anthropic.claude|flex:requests")
	f.Add("222222222222@a+b%7C|anthropic.claude|flex:requests")
	f.Add("222222222222@a#arn%3Aaws%3Aiam%3A%3A222222222222%3Arole%2Fr|m|input")
	f.Add("a||b")
	f.Add("|||")
	f.Fuzz(func(t *testing.T, s string) {
		k, metric, ok := parseLedgerField(s)
		if !ok {
			return
		}
		if strings.ContainsAny(k.Account, "|@#") || strings.Contains(metric, "|") || strings.ContainsAny(k.Tier, "|:") {
			t.Fatalf("%q split into %+v %q", s, k, metric)
		}
		if k.prefix()+metric != s {
			t.Fatalf("%q does not round-trip", s)
		}
	})
}

func FuzzDecodeSpill(f *testing.F) {
	f.Add([]byte(`{"kind":"s","id":"ab","entitlement":"e","account":"1","model":"m","month":"2026-11","month_end":"2026-12-01T00:00:00Z","counted":3,"usage":{"input_tokens":3},"tokens":4}` + "\n\n"))
	f.Add([]byte(`{"kind":"x"}`))
	f.Add([]byte("not json\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		items, err := decodeSpill(data)
		if err != nil {
			return
		}
		for _, s := range items {
			if s.validate() != nil {
				t.Fatalf("decoded an invalid settlement %+v", s)
			}
		}
	})
}
