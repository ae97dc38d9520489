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

func TestLogLinesDropped(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		dropped func() uint64
		want    string
	}{
		{"synchronous log", nil, "0"},
		{"asynchronous log that dropped", func() uint64 { return 7 }, "7"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := NewMetrics(Options{LogDropped: tc.dropped})
			want := `# HELP gateway_log_lines_dropped_total Log lines (access log included) dropped because the log output could not keep up and its buffer was full.
# TYPE gateway_log_lines_dropped_total counter
gateway_log_lines_dropped_total ` + tc.want + "\n"
			if err := testutil.GatherAndCompare(m.Registry, strings.NewReader(want), "gateway_log_lines_dropped_total"); err != nil {
				t.Error(err)
			}
		})
	}
}
