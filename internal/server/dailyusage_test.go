package server

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/bedrock-gateway/gateway/internal/report"
	"github.com/bedrock-gateway/gateway/internal/sim"
	"github.com/bedrock-gateway/gateway/internal/testutil/redistest"
)

// TestDailyUsage: calls made with the official SDK through the gateway show
// in GET /admin/v1/usage/daily on the day Redis says it is (in the gateway's
// --time-zone), per team, and the days add up to the monthly report.
func TestDailyUsage(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	up := newUpstream(t, sim.Options{})
	const zone = "Pacific/Kiritimati" // UTC+14: its day is rarely UTC's
	g := startGateway(t, gatewayOptions{redis: rs.URL(), upstream: up, stateYAML: revokeState, args: []string{"--time-zone", zone}})
	ctx := context.Background()
	for range 3 {
		if _, err := converse(ctx, g.client(t, devAKID, devSecret), "support", 64); err != nil {
			t.Fatal(err)
		}
	}
	if err := g.Limiter().Flush(ctx); err != nil {
		t.Fatal(err)
	}
	redisNow, err := rs.Client(t).Time(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	loc, err := time.LoadLocation(zone)
	if err != nil {
		t.Fatal(err)
	}
	// Read right after the calls: a day boundary in between would show as
	// the calls on the previous day, so accept either.
	today, yesterday := redisNow.In(loc).Format(time.DateOnly), redisNow.Add(-time.Minute).In(loc).Format(time.DateOnly)

	var monthly report.Report
	if code := g.admin(t, http.MethodGet, "/admin/v1/usage?group_by=team", nil, &monthly); code != http.StatusOK {
		t.Fatalf("usage: %d", code)
	}
	var daily report.DailyReport
	if code := g.admin(t, http.MethodGet, "/admin/v1/usage/daily?month="+monthly.Month+"&group_by=team", nil, &daily); code != http.StatusOK {
		t.Fatalf("daily usage: %d", code)
	}
	if daily.Month != monthly.Month || daily.GroupBy != "team" || len(daily.Days) < 28 {
		t.Fatalf("daily report %s by %s with %d days", daily.Month, daily.GroupBy, len(daily.Days))
	}
	var requests, input, output int64
	for _, d := range daily.Days {
		for _, gr := range d.Groups {
			if d.Date != today && d.Date != yesterday || gr.Key != "development" {
				t.Errorf("usage on %s for %s (today is %s in %s)", d.Date, gr.Key, today, zone)
			}
			requests += gr.Requests
			input += gr.InputTokens
			output += gr.OutputTokens
		}
	}
	if requests != 3 || requests != monthly.Totals.Requests || input != monthly.Totals.InputTokens || output != monthly.Totals.OutputTokens || input == 0 {
		t.Fatalf("days add up to %d requests, %d input and %d output tokens; the month says %+v", requests, input, output, monthly.Totals)
	}
	if code := g.admin(t, http.MethodGet, "/admin/v1/usage/daily?group_by=tier", nil, &daily); code != http.StatusBadRequest {
		t.Fatalf("group_by tier: %d, want 400", code)
	}
}
