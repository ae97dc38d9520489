package quota

import (
	"context"
	"testing"

	"github.com/bedrock-gateway/gateway/internal/bedrock"
	"github.com/bedrock-gateway/gateway/internal/testutil/redistest"
)

func TestUsageEvents(t *testing.T) {
	t.Parallel()
	s := redistest.Start(t)
	c := singleClient(t, s)
	l := newTestLimiter(t, c, Options{UsageStreamMaxLen: 1000})
	ctx := context.Background()
	req := Request{Entitlement: "ev", Account: acct, Model: "m", Tokens: 50, Tier: "priority"}
	r1, err := l.Reserve(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	req.Tier = ""
	r2, err := l.Reserve(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Settle(ctx, r1, 30, bedrock.Usage{InputTokens: 10, OutputTokens: 20}); err != nil {
		t.Fatal(err)
	}
	_ = l.Settle(ctx, r1, 30, bedrock.Usage{InputTokens: 10, OutputTokens: 20}) // a repeat: no second event
	if err := l.Release(ctx, r2); err != nil {
		t.Fatal(err)
	}
	flush(t, l)
	msgs, err := c.XRange(ctx, "gw:usage-events", "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 2 {
		t.Fatalf("%d events: %+v", len(msgs), msgs)
	}
	if v := msgs[0].Values; v["kind"] != "settle" || v["id"] != r1.ID || v["entitlement"] != "ev" || v["input_tokens"] != "10" || v["output_tokens"] != "20" || v["tier"] != "priority" {
		t.Fatalf("settle event %v", v)
	}
	if v := msgs[1].Values; v["kind"] != "release" || v["id"] != r2.ID || v["tier"] != "default" {
		t.Fatalf("release event %v", v)
	}
}

// A settlement written synchronously (here: after Close) writes its usage
// event too, marked estimated when its usage was.
func TestUsageEventOfDirectWrite(t *testing.T) {
	t.Parallel()
	s := redistest.Start(t)
	c := singleClient(t, s)
	l := newTestLimiter(t, c, Options{UsageStreamMaxLen: 1000})
	ctx := context.Background()
	r, err := l.Reserve(ctx, Request{Entitlement: "ev2", Account: acct, Model: "m", Tokens: 50})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := l.Settle(ctx, r, 12, bedrock.Usage{InputTokens: 10, OutputTokens: 2, Estimated: true}); err != nil {
		t.Fatal(err)
	}
	msgs, err := c.XRange(ctx, "gw:usage-events", "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 || msgs[0].Values["id"] != r.ID || msgs[0].Values["estimated"] != "1" {
		t.Fatalf("events %+v, want the late settlement's, estimated", msgs)
	}
}
