package metering

import "github.com/prometheus/client_golang/prometheus"

// LeaseCounts is what a replica's quota leases did since it started
// (quota.Limiter.LeaseStats, read at each scrape).
type LeaseCounts struct {
	AcquiredOnRequest int64 // leases a request waited for
	AcquiredAhead     int64 // leases taken in the background before the current one ran out
	Returned          int64
	AdmittedLease     int64 // requests admitted in memory against a lease
	PerRequest        int64 // requests that reserved in Redis on their own
}

// RegisterLeases adds the quota lease counters, read from read at each
// scrape: gateway_quota_leases_acquired_total{when},
// gateway_quota_leases_returned_total and gateway_quota_decisions_total{via}.
func (m *Metrics) RegisterLeases(read func() LeaseCounts) error {
	return m.Registry.Register(&leaseCollector{read: read,
		acquired: prometheus.NewDesc("gateway_quota_leases_acquired_total",
			"Quota leases this replica took: when=request (a request waited for Redis) or when=ahead (in the background, before the current lease ran out).",
			[]string{"when"}, nil),
		returned: prometheus.NewDesc("gateway_quota_leases_returned_total",
			"Quota leases this replica gave back (idle, replaced, dropped with a state change, or at shutdown).", nil, nil),
		decisions: prometheus.NewDesc("gateway_quota_decisions_total",
			"Quota decisions by how they were made: via=lease (in memory, no Redis round trip) or via=reservation (a reservation of the request's own in Redis: near the end of a cap or of the month, a rate limit near its limit, no lease to be had). Decisions taken while Redis is unreachable (fail_open, fail_closed) are in neither.",
			[]string{"via"}, nil),
	})
}

type leaseCollector struct {
	read                          func() LeaseCounts
	acquired, returned, decisions *prometheus.Desc
}

func (c *leaseCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.acquired
	ch <- c.returned
	ch <- c.decisions
}

func (c *leaseCollector) Collect(ch chan<- prometheus.Metric) {
	n := c.read()
	ch <- prometheus.MustNewConstMetric(c.acquired, prometheus.CounterValue, float64(n.AcquiredOnRequest), "request")
	ch <- prometheus.MustNewConstMetric(c.acquired, prometheus.CounterValue, float64(n.AcquiredAhead), "ahead")
	ch <- prometheus.MustNewConstMetric(c.returned, prometheus.CounterValue, float64(n.Returned))
	ch <- prometheus.MustNewConstMetric(c.decisions, prometheus.CounterValue, float64(n.AdmittedLease), "lease")
	ch <- prometheus.MustNewConstMetric(c.decisions, prometheus.CounterValue, float64(n.PerRequest), "reservation")
}
