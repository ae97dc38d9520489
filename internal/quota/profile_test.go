package quota

import (
	"context"
	"slices"
	"testing"

	"github.com/bedrock-gateway/gateway/internal/bedrock"
	"github.com/bedrock-gateway/gateway/internal/testutil/redistest"
)

func TestLedgerModel(t *testing.T) {
	t.Parallel()
	const arn = "arn:aws:bedrock:us-east-1:111111111111:application-inference-profile/abcdefabcdef"
	tests := []struct{ model, profile string }{
		{"anthropic.claude-3-5-haiku-20241022-v1:0", ""},
		{"anthropic.claude-3-5-haiku-20241022-v1:0", arn},
		{"arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-lite-v1:0", arn},
		{"odd#model", ""},
		{"odd#model", arn},
	}
	for _, tc := range tests {
		m, p := splitLedgerModel(ledgerModel(tc.model, tc.profile))
		if m != tc.model || p != tc.profile {
			t.Errorf("%q %q read back as %q %q", tc.model, tc.profile, m, p)
		}
	}
}

func FuzzSplitLedgerModel(f *testing.F) {
	f.Add("m#arn:aws:bedrock:us-east-1:1:application-inference-profile/x")
	f.Add("m")
	f.Fuzz(func(t *testing.T, s string) {
		m, p := splitLedgerModel(s)
		if ledgerModel(m, p) != s {
			t.Fatalf("%q split into %q %q", s, m, p)
		}
	})
}

// TestLedgerRecordsProfile: calls through a profile have their own ledger
// lines, with the model unchanged and the profile beside it.
func TestLedgerRecordsProfile(t *testing.T) {
	t.Parallel()
	l := newTestLimiter(t, singleClient(t, redistest.Start(t)), Options{})
	ent := entName(t)
	ctx := context.Background()
	const arn = "arn:aws:bedrock:us-east-1:111111111111:application-inference-profile/abcdefabcdef"
	for _, profile := range []string{arn, arn, ""} {
		r := mustReserve(t, l, Request{Entitlement: ent, Account: acct, Model: "m", Team: "dev", Profile: profile, Tokens: 5})
		if err := l.Settle(ctx, r, 3, bedrock.Usage{InputTokens: 1, OutputTokens: 2}); err != nil {
			t.Fatal(err)
		}
	}
	flush(t, l)
	rows, err := l.Ledger(ctx, monthOf(l.now(), l.opts.Location).key, []string{ent})
	if err != nil {
		t.Fatal(err)
	}
	month := rows[0].Month
	want := []LedgerRow{
		{Month: month, Entitlement: ent, Account: acct, Model: "m", Tier: "default", Team: "dev", Requests: 1, InputTokens: 1, OutputTokens: 2, CountedTokens: 3},
		{Month: month, Entitlement: ent, Account: acct, Model: "m", Tier: "default", Team: "dev", Profile: arn, Requests: 2, InputTokens: 2, OutputTokens: 4, CountedTokens: 6},
	}
	if !slices.Equal(rows, want) {
		t.Fatalf("ledger\n%+v\nwant\n%+v", rows, want)
	}
}
