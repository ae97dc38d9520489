package server

import (
	"context"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/bedrock-gateway/gateway/internal/sim"
	"github.com/bedrock-gateway/gateway/internal/testutil/redistest"
)

// TestMemberSeesOnlyOwnCaps: the remaining-tokens header and refusals give a
// member figures for its own caps (its share's, its account's) only, never for
// the entitlement-wide cap that every member shares.
func TestMemberSeesOnlyOwnCaps(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	up := newUpstream(t, sim.Options{})
	st := baseState + `
entitlements:
  - name: pooled
    model: amazon.nova-lite-v1:0
    limits: {monthly_tokens: 3000, account_monthly_tokens: 100000, estimate: strict}
    shares: [{target: ou-ab12-platform, monthly_tokens: 50000}, {target: "333333333333"}]
  - {name: whole, model: amazon.nova-micro-v1:0, limits: {monthly_tokens: 100000}, shares: [{target: o-testorg0001}]}
`
	g := startGateway(t, gatewayOptions{redis: rs.URL(), upstream: up, stateYAML: st})

	// reserved is what the last call reserved: strict counts a byte per token,
	// plus rawConverse's maximum of 5.
	reserved := func() int64 {
		reqs := up.sim.Requests()
		return int64(len(reqs[len(reqs)-1].Body)) + 5
	}
	tests := []struct {
		name, model, akid, secret string
		want                      func(est int64) string // the header; "" = absent
	}{
		// The share cap (50000) is tighter than the account cap; the
		// entitlement's (3000) tighter still, but not the member's to see.
		{"share binds", "pooled", devAKID, devSecret, func(est int64) string { return strconv.FormatInt(50000-est, 10) }},
		// A share without a cap of its own: the account cap is the caller's.
		{"account binds", "pooled", dsAKID, dsSecret, func(est int64) string { return strconv.FormatInt(100000-est, 10) }},
		{"only the entitlement cap", "whole", devAKID, devSecret, func(int64) string { return "" }},
	}
	for _, tt := range tests { // in turn: each reads the simulator's last request
		resp := rawConverse(t, g, tt.model, tt.akid, tt.secret)
		if got, want := resp.Header.Get("X-Gateway-Quota-Remaining-Tokens"), tt.want(reserved()); got != want {
			t.Errorf("%s: X-Gateway-Quota-Remaining-Tokens = %q, want %q", tt.name, got, want)
		}
	}

	// Spend the entitlement-wide cap: the refusal says so and when it resets,
	// without a figure of it.
	c := g.client(t, devAKID, devSecret)
	var err error
	for i := 0; i < 200 && err == nil; i++ {
		_, err = converse(context.Background(), c, "pooled", 100)
	}
	if errCode(err) != "ServiceQuotaExceededException" {
		t.Fatalf("after spending the entitlement cap: %v, want ServiceQuotaExceededException", err)
	}
	msg := err.Error()
	if !strings.Contains(msg, "monthly token quota of entitlement pooled is exhausted") || !strings.Contains(msg, "resets at") {
		t.Errorf("refusal %q does not say the entitlement's quota is exhausted and when it resets", msg)
	}
	// Drop the SDK's own numbers (status, request ID) and the reset time: no figure may remain.
	_, message, _ := strings.Cut(msg, "ServiceQuotaExceededException: ")
	message = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ`).ReplaceAllString(message, "")
	if regexp.MustCompile(`[0-9]`).MatchString(message) {
		t.Errorf("refusal %q gives figures of the entitlement-wide cap", msg)
	}
}
