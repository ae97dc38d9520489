package metering

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestReservationExpired(t *testing.T) {
	t.Parallel()
	m := NewMetrics(Options{})
	m.ReservationExpired("support-llm")
	m.ReservationExpired("support-llm")
	m.ReservationExpired("batch")
	want := `# HELP gateway_reservations_expired_total Calls settled after their quota reservation had expired (the cap did not hold their tokens throughout; the usage is still charged).
# TYPE gateway_reservations_expired_total counter
gateway_reservations_expired_total{entitlement="batch"} 1
gateway_reservations_expired_total{entitlement="support-llm"} 2
`
	if err := testutil.GatherAndCompare(m.Registry, strings.NewReader(want), "gateway_reservations_expired_total"); err != nil {
		t.Error(err)
	}
}
