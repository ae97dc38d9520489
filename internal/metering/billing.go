package metering

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// BillingMetrics count calls that wanted an application inference profile
// (billing.profiles) and went to the foundation model instead.
type BillingMetrics struct {
	missing *prometheus.CounterVec
}

// NewBillingMetrics registers gateway_billing_profile_missing_total{entitlement}.
func NewBillingMetrics(reg prometheus.Registerer) (*BillingMetrics, error) {
	m := &BillingMetrics{missing: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gateway_billing_profile_missing_total",
		Help: "Calls of entitlements with billing.profiles that went to the foundation model because no application inference profile is recorded for them yet (run gateway billing sync --apply): AWS Billing cannot attribute their cost.",
	}, []string{"entitlement"})}
	if err := reg.Register(m.missing); err != nil {
		return nil, fmt.Errorf("registering billing metrics: %w", err)
	}
	return m, nil
}

// ProfileMissing counts one such call.
func (m *BillingMetrics) ProfileMissing(entitlement string) {
	m.missing.WithLabelValues(entitlement).Inc()
}
