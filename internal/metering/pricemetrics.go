package metering

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/bedrock-gateway/gateway/internal/usd"
)

// priceCollector exports the price table as a gauge for every model this
// replica has counted tokens for, so dashboards can turn
// gateway_tokens_total into dollars with one join on (model, type). The
// series carry the ledger's model label (e.g. an inference profile ID)
// while the price comes from whichever table entry matches it.
type priceCollector struct {
	m      *Metrics
	prices *PriceTable
	desc   *prometheus.Desc
}

// RegisterPrices adds gateway_price_usd_per_million_tokens{model,type} to
// the registry. Dashboard costs computed from it are floating-point
// approximations; the usage report is the exact figure.
func (m *Metrics) RegisterPrices(prices *PriceTable) error {
	return m.Registry.Register(&priceCollector{
		m: m, prices: prices,
		desc: prometheus.NewDesc("gateway_price_usd_per_million_tokens",
			"Configured price in US dollars per million tokens, for each model this replica has counted tokens for.",
			[]string{"model", "type"}, nil),
	})
}

func (c *priceCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *priceCollector) Collect(ch chan<- prometheus.Metric) {
	seen := map[string]bool{}
	c.m.tokenCh.Range(func(k, _ any) bool {
		model := k.(tokenKey).model
		if seen[model] {
			return true
		}
		seen[model] = true
		p, ok := c.prices.Lookup(model)
		if !ok {
			return true
		}
		for _, v := range [...]struct {
			typ   string
			price usd.Micros
		}{{"input", p.Input}, {"output", p.Output}, {"cache_read", p.CacheRead}, {"cache_write", p.CacheWrite}} {
			ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(v.price)/1e6, model, v.typ)
		}
		return true
	})
}
