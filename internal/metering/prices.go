package metering

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/big"
	"os"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/bedrock-gateway/gateway/internal/bedrock"
	"github.com/bedrock-gateway/gateway/internal/usd"
)

// Price is one model's price in micro-dollars per million tokens of each type.
type Price struct {
	Input, Output, CacheRead, CacheWrite usd.Micros
}

// PriceEntry is one entry of a price table.
type PriceEntry struct {
	Model string
	Price Price
	// Tiers prices the model's pricing tiers other than the default
	// (bedrock.IsPricingTier: priority, flex, reserved, optimized, ...);
	// usage in a tier without a price here is unpriced.
	Tiers map[string]Price
}

// PriceTable prices tokens for usage reports. The file (--prices-file) is YAML,
// one entry per upstream model, prices in US dollars per million tokens of
// each type:
//
//	prices:
//	  - model: anthropic.claude-3-5-haiku-20241022-v1:0
//	    input: 0.80
//	    output: 4.00
//	    cache_read: 0.08
//	    cache_write: 1.00
//	  - model: us.amazon.nova-pro-v1:0   # a profile may have its own price
//	    input: 0.80
//	    output: 3.20
//	    tiers:                           # optional: prices of other tiers
//	      priority: {input: 1.40, output: 5.60}
//	      flex: {input: 0.40, output: 1.60}
//
// Prices are decimals with at most six fractional digits (a type left out
// costs 0); they are read from the YAML text, never through a float. A
// ledger model matches the entry with exactly its ID first; failing that, an
// ARN matches by its resource ID, and a cross-region inference profile ID
// (us., eu., apac., us-gov., jp., au., global.), or its ARN, matches the
// entry of its base model, so "us.anthropic.claude-..." is priced by an entry
// for "anthropic.claude-...". Models with no entry cost 0 and are listed in
// the report's unpriced_models. Usage in a pricing tier other than the
// default (service tier priority, flex or reserved; "optimized" for
// latency-optimized inference; "priority+optimized" and the like for both)
// is priced by the matching entry's tiers; a tier the entry does not price
// costs 0 and is listed as unpriced ("model (tier)").
//
// Arithmetic is exact: a price is held in micro-dollars per million tokens,
// so one token costs a whole number of pico-dollars. The cost of each ledger
// line (month, entitlement, account, model) is computed exactly and rounded
// half up to the micro-dollar; every group and total is a sum of those
// micro-dollar amounts. So rows add up to the totals row exactly, and every
// grouping of a month shows the same total.
//
// The zero value and nil are empty tables (every model unpriced). A table
// is immutable once built.
type PriceTable struct {
	byModel map[string]Price
	tiers   map[string]map[string]Price // model -> tier -> price
	entries []PriceEntry                // sorted by model
}

// NewPriceTable builds a table from entries; models must be unique and
// non-empty and prices non-negative.
func NewPriceTable(entries []PriceEntry) (*PriceTable, error) {
	t := &PriceTable{byModel: make(map[string]Price, len(entries)), tiers: map[string]map[string]Price{}}
	var errs []error
	for i, e := range entries {
		switch {
		case e.Model == "":
			errs = append(errs, fmt.Errorf("price %d: model is required", i+1))
			continue
		case e.Price.negative():
			errs = append(errs, fmt.Errorf("price of %s: prices must not be negative", e.Model))
			continue
		}
		if _, dup := t.byModel[e.Model]; dup {
			errs = append(errs, fmt.Errorf("price of %s: listed twice", e.Model))
			continue
		}
		bad := false
		for _, tier := range slices.Sorted(maps.Keys(e.Tiers)) {
			switch {
			case tier == bedrock.TierDefault || !bedrock.IsPricingTier(tier):
				errs = append(errs, fmt.Errorf("price of %s: tier %q must be priority, flex, reserved, optimized or <tier>+optimized (the default tier is the entry's own price)", e.Model, tier))
				bad = true
			case e.Tiers[tier].negative():
				errs = append(errs, fmt.Errorf("price of %s in tier %s: prices must not be negative", e.Model, tier))
				bad = true
			}
		}
		if bad {
			continue
		}
		t.byModel[e.Model] = e.Price
		if len(e.Tiers) > 0 {
			e.Tiers = maps.Clone(e.Tiers)
			t.tiers[e.Model] = e.Tiers
		}
		t.entries = append(t.entries, e)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	slices.SortFunc(t.entries, func(a, b PriceEntry) int { return strings.Compare(a.Model, b.Model) })
	return t, nil
}

// priceFile is the YAML document.
type priceFile struct {
	Prices []priceYAML `yaml:"prices"`
}

type priceYAML struct {
	Model      string      `yaml:"model"`
	Input      yamlDecimal `yaml:"input"`
	Output     yamlDecimal `yaml:"output"`
	CacheRead  yamlDecimal `yaml:"cache_read"`
	CacheWrite yamlDecimal `yaml:"cache_write"`

	Tiers map[string]tierPriceYAML `yaml:"tiers"`
}

// tierPriceYAML is the price of one tier of a model.
type tierPriceYAML struct {
	Input      yamlDecimal `yaml:"input"`
	Output     yamlDecimal `yaml:"output"`
	CacheRead  yamlDecimal `yaml:"cache_read"`
	CacheWrite yamlDecimal `yaml:"cache_write"`
}

func (p tierPriceYAML) price() Price {
	return Price{Input: usd.Micros(p.Input), Output: usd.Micros(p.Output), CacheRead: usd.Micros(p.CacheRead), CacheWrite: usd.Micros(p.CacheWrite)}
}

func (p Price) negative() bool {
	return p.Input < 0 || p.Output < 0 || p.CacheRead < 0 || p.CacheWrite < 0
}

// yamlDecimal reads a scalar's text, so 0.1 stays exactly 0.1.
type yamlDecimal usd.Micros

func (d *yamlDecimal) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: a price must be a number", n.Line)
	}
	v, err := usd.ParseMicros(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*d = yamlDecimal(v)
	return nil
}

// ParsePrices reads a price table in the YAML format described in the
// package documentation. Unknown fields are errors.
func ParsePrices(r io.Reader) (*PriceTable, error) {
	dec := yaml.NewDecoder(r)
	dec.KnownFields(true)
	var f priceFile
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("parsing prices: %w", err)
	}
	entries := make([]PriceEntry, len(f.Prices))
	for i, p := range f.Prices {
		entries[i] = PriceEntry{Model: p.Model, Price: Price{
			Input: usd.Micros(p.Input), Output: usd.Micros(p.Output), CacheRead: usd.Micros(p.CacheRead), CacheWrite: usd.Micros(p.CacheWrite),
		}}
		for tier, tp := range p.Tiers {
			if entries[i].Tiers == nil {
				entries[i].Tiers = make(map[string]Price, len(p.Tiers))
			}
			entries[i].Tiers[tier] = tp.price()
		}
	}
	t, err := NewPriceTable(entries)
	if err != nil {
		return nil, fmt.Errorf("parsing prices: %w", err)
	}
	return t, nil
}

// LoadPrices reads a price table file; an empty path gives an empty table.
func LoadPrices(path string) (*PriceTable, error) {
	if path == "" {
		return &PriceTable{}, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading prices: %w", err)
	}
	t, err := ParsePrices(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

// Entries returns the table's entries sorted by model.
func (t *PriceTable) Entries() []PriceEntry {
	if t == nil {
		return nil
	}
	return slices.Clone(t.entries)
}

// Lookup finds the price of an upstream model ID: the exact ID, else an
// ARN's resource ID, else the base model of an inference profile.
func (t *PriceTable) Lookup(model string) (Price, bool) {
	if t == nil || len(t.byModel) == 0 {
		return Price{}, false
	}
	key, ok := t.match(model)
	if !ok {
		return Price{}, false
	}
	return t.byModel[key], true
}

// LookupTier finds the price of model in a pricing tier: Lookup's for the
// default tier ("" or "default"), else the tier's price in the entry Lookup
// matches. A tier the entry does not price is not found: it is not priced at
// the default price, which may be far from it.
func (t *PriceTable) LookupTier(model, tier string) (Price, bool) {
	if tier == "" || tier == bedrock.TierDefault {
		return t.Lookup(model)
	}
	if t == nil || len(t.byModel) == 0 {
		return Price{}, false
	}
	key, ok := t.match(model)
	if !ok {
		return Price{}, false
	}
	p, ok := t.tiers[key][tier]
	return p, ok
}

// match returns the table key that prices model.
func (t *PriceTable) match(model string) (string, bool) {
	if _, ok := t.byModel[model]; ok {
		return model, true
	}
	id, err := bedrock.ParseModelID(model)
	if err != nil {
		return "", false
	}
	if id.Resource != "" && id.Resource != model {
		if _, ok := t.byModel[id.Resource]; ok {
			return id.Resource, true
		}
	}
	if id.BaseModel != "" {
		if _, ok := t.byModel[id.BaseModel]; ok {
			return id.BaseModel, true
		}
	}
	return "", false
}

// TokenCounts are the four token types Bedrock reports.
type TokenCounts struct {
	Input, Output, CacheRead, CacheWrite int64
}

var (
	bigMillion     = big.NewInt(1_000_000)
	bigHalfMillion = big.NewInt(500_000)
)

// Cost is the exact cost of tokens at price p, rounded half up to the
// micro-dollar. A price in micro-dollars per million tokens makes each
// token cost a whole number of pico-dollars, so the only rounding is the
// final one.
func (p Price) Cost(t TokenCounts) usd.Micros {
	var sum, term big.Int
	for _, pair := range [...][2]int64{
		{t.Input, int64(p.Input)}, {t.Output, int64(p.Output)},
		{t.CacheRead, int64(p.CacheRead)}, {t.CacheWrite, int64(p.CacheWrite)},
	} {
		term.SetInt64(pair[0])
		term.Mul(&term, big.NewInt(pair[1]))
		sum.Add(&sum, &term)
	}
	// sum is pico-dollars; round half up (away from zero for the
	// non-negative amounts a ledger holds) to micro-dollars.
	neg := sum.Sign() < 0
	if neg {
		sum.Neg(&sum)
	}
	sum.Add(&sum, bigHalfMillion)
	sum.Quo(&sum, bigMillion)
	if !sum.IsInt64() {
		return usd.Micros(1<<63 - 1)
	}
	v := usd.Micros(sum.Int64())
	if neg {
		v = -v
	}
	return v
}

// PriceTokens is the cost of input and output tokens of model at its default
// price (negative counts give a negative cost, as a difference needs); ok
// false when the table does not price the model. It fits
// cloudwatch.Pricer, for `gateway usage reconcile`.
func (t *PriceTable) PriceTokens(model string, input, output int64) (cost usd.Micros, ok bool) {
	p, ok := t.Lookup(model)
	if !ok {
		return 0, false
	}
	return p.Cost(TokenCounts{Input: input, Output: output}), true
}
