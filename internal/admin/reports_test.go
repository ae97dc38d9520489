package admin

import (
	"bytes"
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
	return &report.Report{Month: q.Month, GroupBy: "team", Rows: []report.ReportRow{{Team: "dev", Requests: 1, CostUSD: 1}},
		Totals: report.ReportRow{Requests: 1, CostUSD: 1}}, nil
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
	if u.got != (report.UsageQuery{Month: "2025-03"}) {
		t.Fatalf("query %+v", u.got)
	}
	if want := `{"month":"2025-03","group_by":"team","rows":[{"team":"dev","requests":1,"errors":0,"estimated_requests":0,` +
		`"input_tokens":0,"output_tokens":0,"cache_read_tokens":0,"cache_write_tokens":0,"total_tokens":0,"cost_usd":0.000001}],` +
		`"totals":{"requests":1,"errors":0,"estimated_requests":0,"input_tokens":0,"output_tokens":0,"cache_read_tokens":0,` +
		`"cache_write_tokens":0,"total_tokens":0,"cost_usd":0.000001}}`; compactJSON(t, r.body) != want {
		t.Fatalf("json %s\nwant %s", r.body, want)
	}
	r = e.do(http.MethodGet, "/admin/v1/usage?month=2025-01&group_by=team&format=csv", "", "")
	wantStatus(t, r, http.StatusOK)
	if want := report.CSVHeader + "\n2025-01,dev,,,,1,0,0,0,0,0,0.000001,0,\ntotal,,,,,1,0,0,0,0,0,0.000001,0,\n"; string(r.body) != want ||
		r.header.Get("Content-Type") != "text/csv; charset=utf-8" ||
		r.header.Get("Content-Disposition") != `attachment; filename="usage-2025-01.csv"` {
		t.Fatalf("csv %q %q", r.body, r.header)
	}
	if u.got != (report.UsageQuery{Month: "2025-01", GroupBy: "team"}) {
		t.Fatalf("query %+v", u.got)
	}
	for _, q := range []string{"month=2025-1", "month=March", "group_by=planet", "format=xml", "group_by=model"} {
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
