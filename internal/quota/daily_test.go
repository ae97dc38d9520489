package quota

import (
	"context"
	"testing"
	"time"

	"github.com/bedrock-gateway/gateway/internal/bedrock"
	"github.com/bedrock-gateway/gateway/internal/testutil/redistest"
)

// TestLedgerDays: settle writes the per-day ledger in the day of Redis time
// in the configured zone (a replica's skewed clock does not move it), within
// the reservation's month (a late settlement counts on the month's nearest
// day), the days add up to the monthly ledger, and both expire together.
func TestLedgerDays(t *testing.T) {
	t.Parallel()
	client := singleClient(t, redistest.Start(t))
	ny, tokyo := mustZone(t, "America/New_York"), mustZone(t, "Asia/Tokyo")
	cases := []struct {
		name      string
		loc       *time.Location
		reserveAt time.Time
		settleAt  time.Time // Redis time when the settlement is written
		skew      time.Duration
		release   bool
		month     string
		day       string
	}{
		{name: "same day", loc: time.UTC, reserveAt: time.Date(2026, 11, 15, 12, 0, 0, 0, time.UTC),
			settleAt: time.Date(2026, 11, 15, 12, 0, 1, 0, time.UTC), month: "2026-11", day: "2026-11-15"},
		{name: "settled after midnight counts on the settling day", loc: time.UTC, reserveAt: time.Date(2026, 11, 15, 23, 59, 59, 0, time.UTC),
			settleAt: time.Date(2026, 11, 16, 0, 0, 1, 0, time.UTC), month: "2026-11", day: "2026-11-16"},
		{name: "replica clock ahead", loc: time.UTC, reserveAt: time.Date(2026, 11, 15, 22, 0, 0, 0, time.UTC),
			settleAt: time.Date(2026, 11, 15, 23, 0, 0, 0, time.UTC), skew: 2 * time.Hour, month: "2026-11", day: "2026-11-15"},
		{name: "replica clock behind", loc: time.UTC, reserveAt: time.Date(2026, 11, 16, 0, 30, 0, 0, time.UTC),
			settleAt: time.Date(2026, 11, 16, 1, 0, 0, 0, time.UTC), skew: -2 * time.Hour, month: "2026-11", day: "2026-11-16"},
		{name: "the configured zone", loc: tokyo, reserveAt: time.Date(2026, 11, 15, 20, 0, 0, 0, time.UTC),
			settleAt: time.Date(2026, 11, 15, 20, 0, 1, 0, time.UTC), month: "2026-11", day: "2026-11-16"},
		{name: "month rollover stays in the month", loc: ny, reserveAt: time.Date(2026, 11, 30, 23, 59, 50, 0, ny),
			settleAt: time.Date(2026, 12, 1, 0, 0, 5, 0, ny), month: "2026-11", day: "2026-11-30"},
		{name: "written long after its month", loc: time.UTC, reserveAt: time.Date(2026, 11, 10, 9, 0, 0, 0, time.UTC),
			settleAt: time.Date(2026, 12, 20, 9, 0, 0, 0, time.UTC), month: "2026-11", day: "2026-11-30"},
		{name: "a release counts an error", loc: time.UTC, reserveAt: time.Date(2026, 11, 3, 8, 0, 0, 0, time.UTC),
			settleAt: time.Date(2026, 11, 3, 8, 0, 1, 0, time.UTC), release: true, month: "2026-11", day: "2026-11-03"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l := newTestLimiter(t, client, Options{Location: tc.loc, Grace: 48 * time.Hour})
			ent := entName(t)
			ctx := context.Background()
			l.setNow(tc.reserveAt)
			r := mustReserve(t, l, Request{Entitlement: ent, Account: acct, Team: "payments", Model: "m",
				Caps: threeCaps(ent, 1000, 0, 1000), Tokens: 100})
			if r.Month != tc.month {
				t.Fatalf("reserved in %s, want %s", r.Month, tc.month)
			}
			l.setNow(tc.settleAt)
			l.skew(tc.skew)
			var err error
			if tc.release {
				err = l.Release(ctx, r)
			} else {
				err = l.Settle(ctx, r, 60, bedrock.Usage{InputTokens: 40, OutputTokens: 20, CacheReadTokens: 5})
			}
			if err != nil {
				t.Fatal(err)
			}
			flush(t, l)

			days, err := l.LedgerDays(ctx, tc.month, []string{ent})
			if err != nil {
				t.Fatal(err)
			}
			month, err := l.Ledger(ctx, tc.month, []string{ent})
			if err != nil {
				t.Fatal(err)
			}
			if len(days) != 30 || days[0].Date != "2026-11-01" || days[29].Date != "2026-11-30" {
				t.Fatalf("%d days from %s", len(days), days[0].Date)
			}
			var sum []LedgerRow
			for _, d := range days {
				if len(d.Rows) > 0 && d.Date != tc.day {
					t.Errorf("usage on %s, want only %s: %+v", d.Date, tc.day, d.Rows)
				}
				sum = append(sum, d.Rows...)
			}
			if len(sum) != 1 || len(month) != 1 || sum[0] != month[0] {
				t.Fatalf("days hold %+v, the month %+v", sum, month)
			}
			if got := sum[0]; got.Team != "payments" || (tc.release && got.Errors != 1) || (!tc.release && (got.Requests != 1 || got.InputTokens != 40 || got.CountedTokens != 60)) {
				t.Errorf("day row %+v", got)
			}
			k := l.keysFor(ent)
			mx, dx := client.PExpireTime(ctx, k.ledger(tc.month)).Val(), client.PExpireTime(ctx, k.ledgerDay(tc.day)).Val()
			if mx <= 0 || mx != dx {
				t.Errorf("the day expires at %v, the month at %v: want the same", dx, mx)
			}
		})
	}
}

func TestDayCandidates(t *testing.T) {
	t.Parallel()
	ny := mustZone(t, "America/New_York")
	nov, _ := parseMonth("2026-11", ny)
	cases := []struct {
		now  time.Time
		want []string
	}{
		{time.Date(2026, 11, 15, 12, 0, 0, 0, ny), []string{"2026-11-14", "2026-11-15", "2026-11-16"}},
		{time.Date(2026, 11, 1, 0, 30, 0, 0, ny), []string{"2026-11-01", "2026-11-02"}},
		{time.Date(2026, 11, 30, 23, 0, 0, 0, ny), []string{"2026-11-29", "2026-11-30"}},
		{time.Date(2026, 12, 1, 0, 30, 0, 0, ny), []string{"2026-11-30"}},
		{time.Date(2027, 3, 1, 0, 0, 0, 0, ny), []string{"2026-11-30"}},
		{time.Date(2026, 10, 2, 0, 0, 0, 0, ny), []string{"2026-11-01"}},
		// 1 November 2026 is the end of daylight saving time in New York: a 25-hour day.
		{time.Date(2026, 11, 2, 0, 30, 0, 0, ny), []string{"2026-11-01", "2026-11-02", "2026-11-03"}},
	}
	for _, tc := range cases {
		var got []string
		for _, d := range dayCandidates(tc.now, nov, ny) {
			got = append(got, d.key)
			if d.start.Hour() != 0 || d.start.Location() != ny {
				t.Errorf("day %s starts at %v", d.key, d.start)
			}
		}
		if len(got) != len(tc.want) {
			t.Errorf("candidates at %v = %v, want %v", tc.now, got, tc.want)
			continue
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("candidates at %v = %v, want %v", tc.now, got, tc.want)
			}
		}
	}
}
