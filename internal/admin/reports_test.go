package admin

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/bedrock-gateway/gateway/internal/report"
)

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

type fakeUsage struct{ got report.UsageQuery }

func (f *fakeUsage) Usage(_ context.Context, q report.UsageQuery) (*report.Report, error) {
	f.got = q
	if q.GroupBy == "model" {
		return nil, fmt.Errorf("model grouping needs a price table: %w", report.ErrInvalidQuery)
	}
	if q.From != "" {
		return &report.Report{From: q.From, To: q.To, GroupBy: "team",
			Rows:        []report.ReportRow{{Month: q.To, Team: "dev", Requests: 1, CostUSD: 1}},
			Totals:      report.ReportRow{Requests: 1, CostUSD: 1},
			MonthTotals: []report.ReportRow{{Month: q.From}, {Month: q.To, Requests: 1, CostUSD: 1}}}, nil
	}
	// The source picks the current month in its zone when none is given.
	month := cmp.Or(q.Month, "2025-04")
	return &report.Report{Month: month, GroupBy: "team", Rows: []report.ReportRow{{Month: month, Team: "dev", Requests: 1, CostUSD: 1}},
		Totals: report.ReportRow{Month: month, Requests: 1, CostUSD: 1}}, nil
}

type fakeQuota struct{}

func (fakeQuota) Quota(_ context.Context, name string) (*report.QuotaReport, error) {
	if name == "dev-only" {
		return nil, errors.New("redis down")
	}
	return &report.QuotaReport{Entitlement: name, Caps: []report.CapReport{}}, nil
}

func TestUsageAndQuota(t *testing.T) {
	t.Parallel()
	none := newEnv(t, seedState(t))
	wantError(t, none.do(http.MethodGet, "/admin/v1/usage", "", ""), http.StatusNotImplemented, codeNotImplemented)
	wantError(t, none.do(http.MethodGet, "/admin/v1/entitlements/dev-only/quota", "", ""), http.StatusNotImplemented, codeNotImplemented)

	u := &fakeUsage{}
	e := newEnv(t, seedState(t), func(o *Options) { o.Usage = u; o.Quota = fakeQuota{} })
	r := e.do(http.MethodGet, "/admin/v1/usage", "", "")
	wantStatus(t, r, http.StatusOK)
	// No month: the source decides it in the gateway's zone (the API's
	// clock, 2025-03 in UTC, has no say).
	if u.got != (report.UsageQuery{}) {
		t.Fatalf("query %+v", u.got)
	}
	if want := `{"month":"2025-04","group_by":"team","rows":[{"month":"2025-04","team":"dev","requests":1,"errors":0,"estimated_requests":0,` +
		`"input_tokens":0,"output_tokens":0,"cache_read_tokens":0,"cache_write_tokens":0,"total_tokens":0,"counted_tokens":0,"cost_usd":0.000001}],` +
		`"totals":{"month":"2025-04","requests":1,"errors":0,"estimated_requests":0,"input_tokens":0,"output_tokens":0,"cache_read_tokens":0,` +
		`"cache_write_tokens":0,"total_tokens":0,"counted_tokens":0,"cost_usd":0.000001}}`; compactJSON(t, r.body) != want {
		t.Fatalf("json %s\nwant %s", r.body, want)
	}
	r = e.do(http.MethodGet, "/admin/v1/usage?month=2025-01&group_by=team&format=csv", "", "")
	wantStatus(t, r, http.StatusOK)
	if want := report.CSVHeader + "\n2025-01,dev,,,,1,0,0,0,0,0,0.000001,0,0,0,,\n2025-01,,,,,1,0,0,0,0,0,0.000001,0,0,0,,\n"; string(r.body) != want ||
		r.header.Get("Content-Type") != "text/csv; charset=utf-8" ||
		r.header.Get("Content-Disposition") != `attachment; filename="usage-2025-01.csv"` {
		t.Fatalf("csv %q %q", r.body, r.header)
	}
	if u.got != (report.UsageQuery{Month: "2025-01", GroupBy: "team"}) {
		t.Fatalf("query %+v", u.got)
	}
	r = e.do(http.MethodGet, "/admin/v1/usage?from=2024-12&to=2025-01&format=csv", "", "")
	wantStatus(t, r, http.StatusOK)
	if want := report.CSVHeader + "\n2024-12,,,,,0,0,0,0,0,0,0.000000,0,0,0,,\n2025-01,dev,,,,1,0,0,0,0,0,0.000001,0,0,0,,\n2025-01,,,,,1,0,0,0,0,0,0.000001,0,0,0,,\n"; string(r.body) != want ||
		r.header.Get("Content-Disposition") != `attachment; filename="usage-2024-12_2025-01.csv"` {
		t.Fatalf("csv %q %q", r.body, r.header)
	}
	if u.got != (report.UsageQuery{From: "2024-12", To: "2025-01"}) {
		t.Fatalf("query %+v", u.got)
	}
	for _, q := range []string{"month=2025-1", "month=March", "from=2025-1&to=2025-02", "from=2025-01&to=Feb", "group_by=planet", "format=xml", "group_by=model"} {
		wantError(t, e.do(http.MethodGet, "/admin/v1/usage?"+q, "", ""), http.StatusBadRequest, codeBadRequest)
	}

	r = e.do(http.MethodGet, "/admin/v1/entitlements/customer-support-llm/quota", "", "")
	wantStatus(t, r, http.StatusOK)
	if want := `{"entitlement":"customer-support-llm","month":"","caps":[]}`; compactJSON(t, r.body) != want {
		t.Fatalf("quota %s, want %s", r.body, want)
	}
	wantError(t, e.do(http.MethodGet, "/admin/v1/entitlements/nope/quota", "", ""), http.StatusNotFound, codeNotFound)
	wantError(t, e.do(http.MethodGet, "/admin/v1/entitlements/dev-only/quota", "", ""), http.StatusInternalServerError, codeInternal)
}

func compactJSON(t *testing.T, b []byte) string {
	t.Helper()
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	return buf.String()
}
