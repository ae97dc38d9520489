package metering

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bedrock-gateway/gateway/internal/usd"
)

func TestPriceLookup(t *testing.T) {
	t.Parallel()
	table, err := NewPriceTable([]PriceEntry{
		{Model: "anthropic.claude-3-5-haiku-20241022-v1:0", Price: Price{Input: 800_000}},
		{Model: "us.amazon.nova-pro-v1:0", Price: Price{Input: 1}},
		{Model: "amazon.nova-pro-v1:0", Price: Price{Input: 2}},
		{Model: "my-app-profile", Price: Price{Input: 3}},
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		model string
		want  usd.Micros
		ok    bool
	}{
		{"anthropic.claude-3-5-haiku-20241022-v1:0", 800_000, true},
		{"us.anthropic.claude-3-5-haiku-20241022-v1:0", 800_000, true},
		{"eu.anthropic.claude-3-5-haiku-20241022-v1:0", 800_000, true},
		{"global.anthropic.claude-3-5-haiku-20241022-v1:0", 800_000, true},
		{"arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-5-haiku-20241022-v1:0", 800_000, true},
		{"arn:aws:bedrock:us-east-1:123456789012:inference-profile/apac.anthropic.claude-3-5-haiku-20241022-v1:0", 800_000, true},
		{"us.amazon.nova-pro-v1:0", 1, true}, // an exact entry wins over the base model's
		{"eu.amazon.nova-pro-v1:0", 2, true},
		{"arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/my-app-profile", 3, true},
		{"anthropic.claude-3-5-haiku-20241022-v2:0", 0, false},
		{"xx.anthropic.claude-3-5-haiku-20241022-v1:0", 0, false}, // not a geo prefix
		{"", 0, false},
	}
	for _, tt := range tests {
		p, ok := table.Lookup(tt.model)
		if ok != tt.ok || p.Input != tt.want {
			t.Errorf("Lookup(%q) = %+v, %v; want input %d, %v", tt.model, p, ok, tt.want, tt.ok)
		}
	}
	var nilTable *PriceTable
	if _, ok := nilTable.Lookup("anthropic.claude-3-5-haiku-20241022-v1:0"); ok {
		t.Error("nil table priced a model")
	}
}

func TestPriceCost(t *testing.T) {
	t.Parallel()
	p := Price{Input: 800_000, Output: 4_000_000, CacheRead: 80_000, CacheWrite: 1_000_001}
	tests := []struct {
		tokens TokenCounts
		want   usd.Micros
	}{
		{TokenCounts{}, 0},
		{TokenCounts{Input: 1_000_000}, 800_000},
		{TokenCounts{Input: 1}, 1},                 // 0.8 µ$ rounds up
		{TokenCounts{CacheRead: 6}, 0},             // 0.48 µ$ rounds down
		{TokenCounts{Input: 5, CacheRead: 6}, 4},   // 4.48
		{TokenCounts{CacheWrite: 1}, 1},            // 1.000001
		{TokenCounts{Output: 1, CacheRead: 6}, 4},  // 4.48
		{TokenCounts{CacheRead: 25, Input: 0}, 2},  // 2.0
		{TokenCounts{CacheRead: 50, Output: 0}, 4}, // 4.0
		{TokenCounts{Input: 1_000_000, Output: 250_000, CacheRead: 3, CacheWrite: 7}, 1_800_007},
		{TokenCounts{Input: 5}, 4},
		// Large counts do not overflow: 1e15 tokens at 4 $/M = 4e9 $.
		{TokenCounts{Output: 1_000_000_000_000_000}, 4_000_000_000_000_000},
	}
	for _, tt := range tests {
		if got := p.Cost(tt.tokens); got != tt.want {
			t.Errorf("Cost(%+v) = %d, want %d", tt.tokens, got, tt.want)
		}
	}
	if got := (Price{Input: 500_000}).Cost(TokenCounts{Input: 1}); got != 1 {
		t.Errorf("half a micro-dollar: %d, want 1", got)
	}
	if got := (Price{Input: 499_999}).Cost(TokenCounts{Input: 1}); got != 0 {
		t.Errorf("just under half: %d, want 0", got)
	}
}

func TestParsePrices(t *testing.T) {
	t.Parallel()
	good := `
prices:
  - model: a.b-v1:0
    input: 0.1
    output: "0.2"
    cache_read: 0
  - model: c.d-v1:0
`
	table, err := ParsePrices(strings.NewReader(good))
	if err != nil {
		t.Fatal(err)
	}
	e := table.Entries()
	if len(e) != 2 || e[0].Price != (Price{Input: 100_000, Output: 200_000}) || e[1].Price != (Price{}) {
		t.Errorf("entries %+v", e)
	}
	for name, bad := range map[string]string{
		"unknown field":   "prices:\n  - model: a\n    inptu: 1\n",
		"float exponent":  "prices:\n  - model: a\n    input: 1e-3\n",
		"too precise":     "prices:\n  - model: a\n    input: 0.0000001\n",
		"negative":        "prices:\n  - model: a\n    input: -1\n",
		"duplicate":       "prices:\n  - model: a\n  - model: a\n",
		"no model":        "prices:\n  - input: 1\n",
		"list price":      "prices:\n  - model: a\n    input: [1]\n",
		"top-level typo":  "price:\n  - model: a\n",
		"not yaml at all": "prices: [",
		"unknown tier":    "prices:\n  - model: a\n    tiers: {gold: {input: 1}}\n",
		"default tier":    "prices:\n  - model: a\n    tiers: {default: {input: 1}}\n",
		"tier typo":       "prices:\n  - model: a\n    tiers: {priority: {inptu: 1}}\n",
		"negative tier":   "prices:\n  - model: a\n    tiers: {flex: {output: -1}}\n",
	} {
		if _, err := ParsePrices(strings.NewReader(bad)); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
	if table, err := ParsePrices(strings.NewReader("")); err != nil || len(table.Entries()) != 0 {
		t.Errorf("empty file: %v", err)
	}
}

func TestPriceLookupTier(t *testing.T) {
	t.Parallel()
	table, err := ParsePrices(strings.NewReader(`
prices:
  - model: anthropic.claude-3-5-haiku-20241022-v1:0
    input: 0.80
    output: 4.00
    tiers:
      priority: {input: 1.40, output: 7.00}
      flex: {input: 0.40}
      optimized: {input: 1.00, output: 5.00}
      priority+optimized: {input: 2}
  - model: amazon.nova-lite-v1:0
    input: 0.06
`))
	if err != nil {
		t.Fatal(err)
	}
	const haiku = "anthropic.claude-3-5-haiku-20241022-v1:0"
	for _, tc := range []struct {
		model, tier string
		want        Price
		ok          bool
	}{
		{haiku, "", Price{Input: 800_000, Output: 4_000_000}, true},
		{haiku, "default", Price{Input: 800_000, Output: 4_000_000}, true},
		{haiku, "priority", Price{Input: 1_400_000, Output: 7_000_000}, true},
		{haiku, "flex", Price{Input: 400_000}, true},
		{haiku, "optimized", Price{Input: 1_000_000, Output: 5_000_000}, true},
		{haiku, "priority+optimized", Price{Input: 2_000_000}, true},
		{"us." + haiku, "priority", Price{Input: 1_400_000, Output: 7_000_000}, true}, // a profile: its base model's tiers
		{haiku, "reserved", Price{}, false},                                           // not priced at the default price
		{"amazon.nova-lite-v1:0", "priority", Price{}, false},
		{"amazon.nova-lite-v1:0", "default", Price{Input: 60_000}, true},
		{"unknown.model-v1:0", "priority", Price{}, false},
	} {
		got, ok := table.LookupTier(tc.model, tc.tier)
		if ok != tc.ok || got != tc.want {
			t.Errorf("LookupTier(%q, %q) = %+v, %v; want %+v, %v", tc.model, tc.tier, got, ok, tc.want, tc.ok)
		}
	}
	var empty *PriceTable
	if _, ok := empty.LookupTier(haiku, "priority"); ok {
		t.Error("a nil table priced a tier")
	}
}

func TestLoadPricesExample(t *testing.T) {
	t.Parallel()
	table, err := LoadPrices(filepath.Join("..", "..", "deploy", "examples", "prices.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := table.Lookup("us.anthropic.claude-3-5-haiku-20241022-v1:0"); !ok {
		t.Error("the example does not price the example state's model")
	}
	if _, ok := table.Lookup("amazon.nova-lite-v1:0"); !ok {
		t.Error("the example does not price the example state's model")
	}
	if _, ok := table.LookupTier("us.anthropic.claude-3-5-haiku-20241022-v1:0", "priority"); !ok {
		t.Error("the example does not show a tier price")
	}
	if table, err := LoadPrices(""); err != nil || len(table.Entries()) != 0 {
		t.Errorf("no file: %v", err)
	}
	if _, err := LoadPrices(filepath.Join(t.TempDir(), "missing.yaml")); !os.IsNotExist(unwrapAll(err)) {
		t.Errorf("missing file: %v", err)
	}
}

func unwrapAll(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return err
		}
		err = u.Unwrap()
	}
}

func FuzzParsePrices(f *testing.F) {
	f.Add("prices:\n  - model: a.b-v1:0\n    input: 0.1\n    output: 2\n")
	f.Add("prices: []\n")
	f.Add("prices:\n  - model: us.a.b\n    cache_write: 1.000001\n")
	f.Fuzz(func(t *testing.T, doc string) {
		table, err := ParsePrices(strings.NewReader(doc))
		if err != nil {
			return
		}
		for _, e := range table.Entries() {
			p, ok := table.Lookup(e.Model)
			if !ok || p != e.Price {
				t.Fatalf("entry %+v not found by its own model", e)
			}
			if p.Cost(TokenCounts{Input: 1 << 40, Output: 1 << 40}) < 0 {
				t.Fatalf("negative cost for %+v", e)
			}
		}
	})
}

func testPrices(t *testing.T) *PriceTable {
	t.Helper()
	p, err := ParsePrices(strings.NewReader(`
prices:
  - model: anthropic.claude-3-5-haiku-20241022-v1:0
    input: 0.8
    output: 4
    cache_read: 0.08
    cache_write: 1.000001
  - model: amazon.nova-lite-v1:0
    input: 0.06
    output: 0.24
`))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

const haiku = "us.anthropic.claude-3-5-haiku-20241022-v1:0"
