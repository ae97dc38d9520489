package metering

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/bedrock-gateway/gateway/internal/bedrock"
)

// TestObserveChildrenCache: requests that share some labels but not all
// land in their own series (the children cache is keyed by every label),
// and DropAccountLabel folds accounts together.
func TestObserveChildrenCache(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		opts Options
		want string
	}{
		{"per account", Options{}, `
gateway_requests_total{account="111111111111",code="200",entitlement="a",operation="Converse",team="t"} 2
gateway_requests_total{account="111111111111",code="429",entitlement="a",operation="Converse",team="t"} 1
gateway_requests_total{account="111111111111",code="200",entitlement="a",operation="InvokeModel",team="t"} 1
gateway_requests_total{account="222222222222",code="200",entitlement="a",operation="Converse",team="t"} 1
gateway_requests_total{account="222222222222",code="200",entitlement="b",operation="Converse",team="u"} 1
`},
		{"account label dropped", Options{DropAccountLabel: true}, `
gateway_requests_total{account="",code="200",entitlement="a",operation="Converse",team="t"} 3
gateway_requests_total{account="",code="429",entitlement="a",operation="Converse",team="t"} 1
gateway_requests_total{account="",code="200",entitlement="a",operation="InvokeModel",team="t"} 1
gateway_requests_total{account="",code="200",entitlement="b",operation="Converse",team="u"} 1
`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := NewMetrics(tc.opts)
			for _, r := range []Request{
				{Entitlement: "a", Team: "t", Account: "111111111111", Op: bedrock.OpConverse, Code: 200},
				{Entitlement: "a", Team: "t", Account: "111111111111", Op: bedrock.OpConverse, Code: 200},
				{Entitlement: "a", Team: "t", Account: "111111111111", Op: bedrock.OpConverse, Code: 429},
				{Entitlement: "a", Team: "t", Account: "111111111111", Op: bedrock.OpInvokeModel, Code: 200},
				{Entitlement: "a", Team: "t", Account: "222222222222", Op: bedrock.OpConverse, Code: 200},
				{Entitlement: "b", Team: "u", Account: "222222222222", Op: bedrock.OpConverse, Code: 200},
			} {
				r.Duration = time.Millisecond
				m.Observe(r)
			}
			want := "# HELP gateway_requests_total Requests by entitlement, team, account, operation and HTTP status code.\n# TYPE gateway_requests_total counter" + tc.want
			if err := testutil.GatherAndCompare(m.Registry, strings.NewReader(want), "gateway_requests_total"); err != nil {
				t.Error(err)
			}
		})
	}
}

// BenchmarkObserve is the metrics stage of one finished request with usage:
// requests, duration, first byte, overhead and four token counters, from
// the cached label children.
func BenchmarkObserve(b *testing.B) {
	m := NewMetrics(Options{})
	r := Request{Entitlement: "customer-support-llm", Team: "development", Account: "222222222222",
		Model: "anthropic.claude-3-5-haiku-20241022-v1:0", Op: bedrock.OpConverse, Code: 200,
		Duration: 3 * time.Millisecond, TTFB: time.Millisecond, Overhead: 80 * time.Microsecond,
		Usage: bedrock.Usage{InputTokens: 12, OutputTokens: 16}, HasUsage: true}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.Observe(r)
		}
	})
}
