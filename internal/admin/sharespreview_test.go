package admin

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

const previewPath = "/admin/v1/entitlements/customer-support-llm/shares/preview"

// TestPreviewSharesCSV: every row gets its verdict and reason; nothing is
// applied. The seed's customer-support-llm (scope: the organization) is
// shared with ou-ab12-dev00001 and 333333333333 (2,000,000 tokens).
func TestPreviewSharesCSV(t *testing.T) {
	t.Parallel()
	e := newEnv(t, seedState(t))
	csv := strings.Join([]string{
		"target,monthly_tokens",         // header, not a row
		"444444444444",                  // line 2: accepted
		"999",                           // malformed
		"999999999999",                  // unknown account
		"ou-ab12-zzz00001",              // unknown OU
		"o-otherorg001",                 // unknown organization
		"ou-ab12-dev00001,0",            // already shared, same caps
		"333333333333,5",                // already shared, new cap: accepted
		"444444444444",                  // duplicate of line 2
		"555555555555,lots",             // malformed count
		"# a comment",                   // no row
		"555555555555,7 # marketing",    // accepted with its own cap
		"222222222222,1,2",              // malformed: 3 columns
		"\"ou-ab12-mkt00001\"",          // accepted, quoted
		strings.Repeat("8", maxCSVLine), // malformed: too long
	}, "\n")
	r := e.do(http.MethodPost, previewPath+"?monthly_tokens=9", "text/csv", csv)
	wantStatus(t, r, http.StatusOK)
	var got previewBody
	r.decode(t, &got)
	type row struct {
		line    int
		target  string
		verdict string
		reason  string
		tokens  string
	}
	want := []row{
		{2, "444444444444", "accepted", "", "9"},
		{3, "999", "refused", reasonMalformed, ""},
		{4, "999999999999", "refused", reasonUnknownAcct, ""},
		{5, "ou-ab12-zzz00001", "refused", reasonUnknownOU, ""},
		{6, "o-otherorg001", "refused", reasonUnknownOrg, ""},
		{7, "ou-ab12-dev00001", "refused", reasonAlreadyShared, ""},
		{8, "333333333333", "accepted", "", "5"},
		{9, "444444444444", "refused", reasonDuplicate, ""},
		{10, "555555555555", "refused", reasonMalformed, ""},
		{12, "555555555555", "accepted", "", "7"},
		{13, "222222222222", "refused", reasonMalformed, ""},
		{14, "ou-ab12-mkt00001", "accepted", "", "9"},
		{15, strings.Repeat("8", maxCSVValue) + "...", "refused", reasonMalformed, ""},
	}
	if got.Total != len(want) || got.Accepted != 4 || got.Refused != 9 || got.Offset != 0 || got.Limit != defaultPreviewLimit || len(got.Rows) != len(want) {
		t.Fatalf("preview totals %d/%d/%d offset %d limit %d rows %d: %s", got.Total, got.Accepted, got.Refused, got.Offset, got.Limit, len(got.Rows), r.body)
	}
	for i, w := range want {
		g := got.Rows[i]
		tokens := ""
		if g.MonthlyTokens != nil {
			tokens = fmt.Sprint(*g.MonthlyTokens)
		}
		if (row{g.Line, g.Target, g.Verdict, g.Reason, tokens}) != w {
			t.Errorf("row %d = %+v (tokens %s), want %+v", i, g, tokens, w)
		}
		if g.Verdict == verdictRefused && g.Detail == "" {
			t.Errorf("row %d refused without detail", i)
		}
	}
	if e.store.ver() != 0 {
		t.Fatal("the preview changed the state")
	}

	// Applying the accepted rows as the preview showed them succeeds.
	wantStatus(t, e.do(http.MethodPost, "/admin/v1/entitlements/customer-support-llm/shares?monthly_tokens=9", "text/csv",
		"444444444444\n333333333333,5\n555555555555,7\nou-ab12-mkt00001\n"), http.StatusOK)
}

func TestPreviewSharesScopeAndJSON(t *testing.T) {
	t.Parallel()
	e := newEnv(t, seedState(t))
	// dev-only is scoped to ou-ab12-dev00001 (with ou-ab12-web00001 under it).
	r := e.json(http.MethodPost, "/admin/v1/entitlements/dev-only/shares/preview",
		`{"targets":["444444444444","333333333333","bogus","444444444444"],"monthly_tokens":3}`)
	wantStatus(t, r, http.StatusOK)
	var got previewBody
	r.decode(t, &got)
	want := []struct {
		index   int
		verdict string
		reason  string
	}{{0, "accepted", ""}, {1, "refused", reasonOutsideScope}, {2, "refused", reasonMalformed}, {3, "refused", reasonDuplicate}}
	if got.Total != 4 || got.Accepted != 1 || len(got.Rows) != 4 {
		t.Fatalf("preview %+v", got)
	}
	for i, w := range want {
		g := got.Rows[i]
		if g.Index == nil || *g.Index != w.index || g.Line != 0 || g.Verdict != w.verdict || g.Reason != w.reason {
			t.Errorf("row %d = %+v, want %+v", i, g, w)
		}
	}
}

func TestPreviewSharesPaging(t *testing.T) {
	t.Parallel()
	e := newEnv(t, seedState(t))
	var b strings.Builder
	for i := range 2500 {
		if i%10 == 3 {
			fmt.Fprintf(&b, "bad-%d\n", i)
			continue
		}
		fmt.Fprintf(&b, "9%011d\n", i) // unknown accounts
	}
	csv := b.String()
	cases := []struct {
		query     string
		status    int
		rows      int
		firstLine int
	}{
		{"", http.StatusOK, defaultPreviewLimit, 1},
		{"?offset=2400&limit=1000", http.StatusOK, 100, 2401},
		{"?offset=200&limit=5", http.StatusOK, 5, 201},
		{"?offset=2500", http.StatusOK, 0, 0},
		{"?limit=0", http.StatusBadRequest, 0, 0},
		{"?limit=1001", http.StatusBadRequest, 0, 0},
		{"?offset=-1", http.StatusBadRequest, 0, 0},
		{"?offset=x", http.StatusBadRequest, 0, 0},
	}
	for _, tc := range cases {
		r := e.do(http.MethodPost, previewPath+tc.query, "text/csv", csv)
		if tc.status != http.StatusOK {
			wantError(t, r, tc.status, codeBadRequest)
			continue
		}
		wantStatus(t, r, http.StatusOK)
		var got previewBody
		r.decode(t, &got)
		if got.Total != 2500 || got.Refused != 2500 || len(got.Rows) != tc.rows {
			t.Fatalf("%s: total %d refused %d rows %d", tc.query, got.Total, got.Refused, len(got.Rows))
		}
		if tc.rows > 0 && got.Rows[0].Line != tc.firstLine {
			t.Fatalf("%s: first row on line %d, want %d", tc.query, got.Rows[0].Line, tc.firstLine)
		}
	}
}

func TestPreviewSharesRefusals(t *testing.T) {
	t.Parallel()
	e := newEnv(t, seedState(t))
	wantError(t, e.do(http.MethodPost, "/admin/v1/entitlements/nope/shares/preview", "text/csv", "222222222222\n"), http.StatusNotFound, codeNotFound)
	wantError(t, e.json(http.MethodPost, previewPath, `{"targets":[]}`), http.StatusBadRequest, codeBadRequest)
	wantError(t, e.do(http.MethodPost, previewPath, "application/xml", "<x/>"), http.StatusUnsupportedMediaType, codeUnsupportedMediaType)
	wantError(t, e.do(http.MethodPost, previewPath+"?monthly_tokens=-1", "text/csv", "222222222222\n"), http.StatusBadRequest, codeBadRequest)
	r := e.do(http.MethodPost, previewPath, "text/csv", "target\n")
	wantStatus(t, r, http.StatusOK)
	var got previewBody
	r.decode(t, &got)
	if got.Total != 0 || got.Rows == nil {
		t.Fatalf("empty preview %+v", got)
	}
}
