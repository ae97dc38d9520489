package metering

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// optionalGauge is a gauge without labels that is absent from a scrape until
// its value is known: "unknown" must not read as 0 (which would fire alerts)
// nor as 1 (which would hide a problem).
type optionalGauge struct {
	desc  *prometheus.Desc
	known atomic.Bool
	value atomic.Uint64 // math.Float64bits would do; 0/1 gauges need no more
}

func newOptionalGauge(name, help string) *optionalGauge {
	return &optionalGauge{desc: prometheus.NewDesc(name, help, nil, nil)}
}

func (g *optionalGauge) set(v uint64) { g.value.Store(v); g.known.Store(true) }

func (g *optionalGauge) unset() { g.known.Store(false) }

// Describe implements prometheus.Collector.
func (g *optionalGauge) Describe(ch chan<- *prometheus.Desc) { ch <- g.desc }

// Collect implements prometheus.Collector.
func (g *optionalGauge) Collect(ch chan<- prometheus.Metric) {
	if !g.known.Load() {
		return
	}
	ch <- prometheus.MustNewConstMetric(g.desc, prometheus.GaugeValue, float64(g.value.Load()))
}
