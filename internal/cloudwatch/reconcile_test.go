package cloudwatch

import (
	"fmt"
	"testing"

	"github.com/bedrock-gateway/gateway/internal/usd"
)

type profiles map[string]Profile

func (p profiles) ResolveProfile(region, arn string) (Profile, bool) {
	x, ok := p[region+" "+arn]
	return x, ok
}

// TestCompare: the kinds of rows, the attribution of profile ARNs (through
// the ledger's Profile, or the resolver when the ledger has none) and the
// tolerance.
func TestCompare(t *testing.T) {
	t.Parallel()
	const arnA = "arn:aws:bedrock:us-east-1:111111111111:application-inference-profile/aaa"
	const arnB = "arn:aws:bedrock:us-east-1:111111111111:application-inference-profile/bbb"
	bedrock := []BedrockUsage{
		{"us-east-1", "haiku", 100, 50},
		{"us-east-1", arnA, 30, 10},
		{"us-east-1", arnB, 7, 3},
		{"eu-west-1", "nova", 0, 0},
		{"eu-west-1", "llama", 5, 5},
	}
	ledger := []LedgerLine{
		{Entitlement: "chat", Team: "ml", Model: "haiku", Region: "us-east-1", InputTokens: 60, OutputTokens: 30},
		{Entitlement: "chat", Team: "web", Model: "haiku", Region: "us-east-1", InputTokens: 40, OutputTokens: 19},
		{Entitlement: "chat", Team: "ops", Model: "haiku", Region: "us-east-1", Profile: arnA, InputTokens: 30, OutputTokens: 10},
		{Entitlement: "old", Team: "ml", Model: "titan", Region: "us-east-1", InputTokens: 2, OutputTokens: 2},
	}
	res := Compare(bedrock, ledger, profiles{"us-east-1 " + arnB: {Entitlement: "chat", Team: "data", Model: "haiku"}},
		func(model string, in, out int64) (usd.Micros, bool) { return usd.Micros(in + 10*out), model == "haiku" }, 1)
	want := []string{
		"eu-west-1 llama unmetered [] [] +10 false true",
		"us-east-1 arn:aws:bedrock:us-east-1:111111111111:application-inference-profile/aaa match [chat] [ops] +0 true false",
		"us-east-1 arn:aws:bedrock:us-east-1:111111111111:application-inference-profile/bbb unmetered [chat] [data] +10 true true",
		"us-east-1 haiku drift [chat] [ml web] +1 true false",
		"us-east-1 titan unseen [old] [ml] -4 false true",
	}
	if len(res.Rows) != len(want) {
		t.Fatalf("rows %+v", res.Rows)
	}
	for i, r := range res.Rows {
		got := fmt.Sprintf("%s %s %s %v %v %+d %v %v", r.Region, r.ModelID, r.Kind, r.Entitlements, r.Teams, r.DiffInput+r.DiffOutput, r.Priced, r.OverTolerance)
		if got != want[i] {
			t.Errorf("row %d: %s\nwant   %s", i, got, want[i])
		}
	}
	if res.Exceeded != 3 || res.Totals.DiffInput+res.Totals.DiffOutput != 17 {
		t.Errorf("exceeded %d, totals %+v", res.Exceeded, res.Totals)
	}
}
