package metering

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/bedrock-gateway/gateway/internal/bedrock"
)

func TestRegisterPrices(t *testing.T) {
	t.Parallel()
	m := NewMetrics(Options{})
	if err := m.RegisterPrices(testPrices(t)); err != nil {
		t.Fatal(err)
	}
	// Prices appear only for models with tokens; an unpriced model has none.
	m.AddTokens("support-llm", "dev", "222222222222", haiku, bedrock.Usage{InputTokens: 1})
	m.AddTokens("support-llm", "dev", "333333333333", haiku, bedrock.Usage{InputTokens: 1})
	m.AddTokens("x", "dev", "333333333333", "cohere.command-r-v1:0", bedrock.Usage{InputTokens: 1})
	want := `# HELP gateway_price_usd_per_million_tokens Configured price in US dollars per million tokens, for each model this replica has counted tokens for.
# TYPE gateway_price_usd_per_million_tokens gauge
gateway_price_usd_per_million_tokens{model="us.anthropic.claude-3-5-haiku-20241022-v1:0",type="cache_read"} 0.08
gateway_price_usd_per_million_tokens{model="us.anthropic.claude-3-5-haiku-20241022-v1:0",type="cache_write"} 1.000001
gateway_price_usd_per_million_tokens{model="us.anthropic.claude-3-5-haiku-20241022-v1:0",type="input"} 0.8
gateway_price_usd_per_million_tokens{model="us.anthropic.claude-3-5-haiku-20241022-v1:0",type="output"} 4
`
	if err := testutil.GatherAndCompare(m.Registry, strings.NewReader(want), "gateway_price_usd_per_million_tokens"); err != nil {
		t.Error(err)
	}
	if err := m.RegisterPrices(testPrices(t)); err == nil {
		t.Error("registering prices twice succeeded")
	}
}

// gateway_store_persistence_enabled is absent until known, then 0 or 1, and
// absent again when it can no longer be read.
func TestStorePersistenceGauge(t *testing.T) {
	t.Parallel()
	m := NewMetrics(Options{})
	read := func() (float64, bool) {
		fams, err := m.Registry.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range fams {
			if f.GetName() == "gateway_store_persistence_enabled" {
				return f.GetMetric()[0].GetGauge().GetValue(), true
			}
		}
		return 0, false
	}
	steps := []struct {
		known, enabled bool
		want           float64
		present        bool
	}{
		{false, false, 0, false},
		{true, false, 0, true},
		{true, true, 1, true},
		{false, true, 0, false},
	}
	if _, ok := read(); ok {
		t.Fatal("present before any check")
	}
	for i, s := range steps {
		m.SetStorePersistence(s.known, s.enabled)
		v, ok := read()
		if ok != s.present || v != s.want {
			t.Fatalf("step %d: got %v present=%v, want %v present=%v", i, v, ok, s.want, s.present)
		}
	}
}

func TestTokensCarryTheTier(t *testing.T) {
	t.Parallel()
	m := NewMetrics(Options{})
	for _, tier := range []string{"", "priority", "priority"} {
		m.Observe(Request{Entitlement: "e", Team: "dev", Account: "222222222222", Model: "m", Op: bedrock.OpConverse, Code: 200,
			Usage: bedrock.Usage{InputTokens: 5, OutputTokens: 1}, HasUsage: true, Tier: tier})
	}
	want := `# HELP gateway_tokens_total Tokens reported by Bedrock, by type (input, output, cache_read, cache_write) and pricing tier.
# TYPE gateway_tokens_total counter
gateway_tokens_total{account="222222222222",entitlement="e",model="m",team="dev",tier="default",type="cache_read"} 0
gateway_tokens_total{account="222222222222",entitlement="e",model="m",team="dev",tier="default",type="cache_write"} 0
gateway_tokens_total{account="222222222222",entitlement="e",model="m",team="dev",tier="default",type="input"} 5
gateway_tokens_total{account="222222222222",entitlement="e",model="m",team="dev",tier="default",type="output"} 1
gateway_tokens_total{account="222222222222",entitlement="e",model="m",team="dev",tier="priority",type="cache_read"} 0
gateway_tokens_total{account="222222222222",entitlement="e",model="m",team="dev",tier="priority",type="cache_write"} 0
gateway_tokens_total{account="222222222222",entitlement="e",model="m",team="dev",tier="priority",type="input"} 10
gateway_tokens_total{account="222222222222",entitlement="e",model="m",team="dev",tier="priority",type="output"} 2
`
	if err := testutil.GatherAndCompare(m.Registry, strings.NewReader(want), "gateway_tokens_total"); err != nil {
		t.Fatal(err)
	}
}
