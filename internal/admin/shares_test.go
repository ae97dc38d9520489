package admin

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/bedrock-gateway/gateway/internal/state"
)

func TestParseSharesCSV(t *testing.T) {
	t.Parallel()
	type row struct {
		line   int
		target string
		tokens int64
	}
	tests := []struct {
		name     string
		csv      string
		def      int64
		rows     []row
		problems []int // lines
	}{
		{name: "plain", csv: "222222222222\nou-ab12-dev00001\n",
			rows: []row{{1, "222222222222", 0}, {2, "ou-ab12-dev00001", 0}}},
		{name: "header target", csv: "target\n222222222222",
			rows: []row{{2, "222222222222", 0}}},
		{name: "header with tokens", csv: "account_id,monthly_tokens\n222222222222,500\n333333333333,\n", def: 7,
			rows: []row{{2, "222222222222", 500}, {3, "333333333333", 7}}},
		{name: "header with spaces", csv: "Account ID , Monthly Tokens\n222222222222",
			rows: []row{{2, "222222222222", 0}}},
		{name: "blank lines whitespace CRLF", csv: "\r\n  \r\n\t222222222222 , 10 \r\n\r\n  o-exampleorg1\r\n",
			rows: []row{{3, "222222222222", 10}, {5, "o-exampleorg1", 0}}},
		{name: "comments", csv: "# members\n222222222222 # support bot\n#333333333333\nr-ab12",
			rows: []row{{2, "222222222222", 0}, {4, "r-ab12", 0}}},
		{name: "comment before header", csv: "# exported\nid\n222222222222",
			rows: []row{{3, "222222222222", 0}}},
		{name: "quoted fields and BOM", csv: "\xef\xbb\xbf\"target\",\"monthly_tokens\"\n\"222222222222\",\"42\"",
			rows: []row{{2, "222222222222", 42}}},
		{name: "no trailing newline", csv: "222222222222", rows: []row{{1, "222222222222", 0}}},
		{name: "empty", csv: ""},
		{name: "only header", csv: "target\n"},
		{name: "bad rows", csv: "target\n22222222222\n222222222222,-1\n222222222222,1,2\nou-AB12-dev00001\n333333333333,lots\n,5\n",
			problems: []int{2, 3, 4, 5, 6, 7}},
		{name: "duplicates", csv: "222222222222\n333333333333\n 222222222222 ,5\n", problems: []int{3}},
		{name: "second header-like line is an error", csv: "target\naccount\n", problems: []int{2}},
		{name: "typo on first line is not a header when it has digits", csv: "22222222222x\n", problems: []int{1}},
		{name: "many columns", csv: "222222222222,1,2,3,4\n" + strings.Repeat(",", 10000) + "\n", problems: []int{1, 2}},
		{name: "long line skipped whole", csv: "222222222222\n" + strings.Repeat("x", maxCSVLine+10) + "\n333333333333\nbogus", problems: []int{2, 4}},
		{name: "long line at the end", csv: "222222222222\n" + strings.Repeat("1", 3*maxCSVLine), problems: []int{2}},
		{name: "long comment", csv: "222222222222 # " + strings.Repeat("c", maxCSVLine) + "\n", problems: []int{1}},
		{name: "long target", csv: strings.Repeat("9", 200) + "\n", problems: []int{1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rows, problems, err := parseSharesCSV(strings.NewReader(tt.csv), tt.def)
			if err != nil {
				t.Fatal(err)
			}
			if problems.total != len(problems.items) {
				t.Errorf("%d problems counted, %d listed", problems.total, len(problems.items))
			}
			var lines []int
			for _, p := range problems.items {
				lines = append(lines, p.Line)
				if p.Problem == "" || p.Value == "" && p.Line != 7 {
					t.Errorf("problem without detail: %+v", p)
				}
			}
			if !slices.Equal(lines, tt.problems) {
				t.Fatalf("problem lines %v, want %v (%+v)", lines, tt.problems, problems)
			}
			if len(tt.problems) > 0 {
				return
			}
			var got []row
			for _, r := range rows {
				got = append(got, row{r.Line, r.Target, r.MonthlyTokens})
			}
			if !slices.Equal(got, tt.rows) {
				t.Fatalf("rows %v, want %v", got, tt.rows)
			}
		})
	}
}

// TestParseSharesCSVProblemsBounded: a 10 MB upload of bad rows lists the
// first maxProblems problems and counts the rest, read as it streams in: the
// parser allocates almost nothing beyond the listed problems.
func TestParseSharesCSVProblemsBounded(t *testing.T) {
	// Not parallel: it measures the memory allocated while it runs.
	tests := []struct {
		name, line string
		problem    string
	}{
		{"bad targets", "22222222222x\n", notATarget},
		{"many columns", "222222222222," + strings.Repeat("1,", 200) + "\n", "expected at most 2 columns (target, monthly_tokens), got 202"},
		{"long lines", strings.Repeat("2", maxCSVLine+1) + "\n", "longer than"},
		{"duplicates", "222222222222\n", "duplicate: 222222222222 is already on line 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const size = 10 << 20
			lines := (size + len(tt.line) - 1) / len(tt.line)
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			rows, problems, err := parseSharesCSV(&repeatReader{line: tt.line, size: size}, 0)
			runtime.ReadMemStats(&after)
			if err != nil {
				t.Fatal(err)
			}
			wantTotal := lines
			if tt.name == "duplicates" {
				wantTotal = lines - 1
			}
			if problems.total != wantTotal || len(problems.items) != maxProblems || !strings.Contains(problems.items[0].Problem, tt.problem) {
				t.Fatalf("%d problems counted, %d listed (the first %+v); want %d counted, %d listed", problems.total, len(problems.items), problems.items[0], wantTotal, maxProblems)
			}
			for _, p := range problems.items {
				if len(p.Value) > maxCSVValue+3 {
					t.Fatalf("value of %d bytes echoed", len(p.Value))
				}
			}
			// The input is never held: what is allocated is the read buffer,
			// the listed problems and (for duplicates) the one good row.
			if got := after.TotalAlloc - before.TotalAlloc; got > 1<<20 {
				t.Errorf("parsing %d bytes allocated %d bytes", size, got)
			}
			_ = rows
		})
	}
}

// repeatReader reads line over and over, size bytes in all, cutting the last.
type repeatReader struct {
	line string
	size int
	off  int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) && r.off < r.size {
		c := copy(p[n:min(len(p), n+r.size-r.off)], r.line[r.off%len(r.line):])
		n += c
		r.off += c
	}
	if n == 0 {
		return 0, io.EOF
	}
	return n, nil
}

func FuzzParseSharesCSV(f *testing.F) {
	for _, s := range []string{
		"222222222222\n", "target,monthly_tokens\r\n222222222222,5\r\n", "# c\n\nou-ab12-dev00001 # x\n",
		"\xef\xbb\xbf\"o-exampleorg1\"", "a,b,c\n,\n\"\"\n", "222222222222\n222222222222",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		rows, problems, err := parseSharesCSV(bytes.NewReader(data), 3)
		if err != nil {
			t.Fatal(err)
		}
		if problems.total < len(problems.items) || len(problems.items) > maxProblems {
			t.Fatalf("%d problems counted, %d listed", problems.total, len(problems.items))
		}
		lines := strings.Count(string(data), "\n") + 1
		seen := make(map[string]bool)
		for _, r := range rows {
			if !isTargetID(r.Target) || r.MonthlyTokens < 0 || r.Line < 1 || r.Line > lines {
				t.Fatalf("bad row %+v", r)
			}
			if seen[r.Target] {
				t.Fatalf("duplicate row %+v", r)
			}
			seen[r.Target] = true
		}
		for _, p := range problems.items {
			if p.Line < 1 || p.Line > lines || p.Problem == "" || len(p.Value) > maxCSVValue+3 {
				t.Fatalf("bad problem %+v", p)
			}
		}
		// The preview's scan sees every row the parser counts, in order.
		n, last := 0, 0
		if err := scanSharesCSV(bytes.NewReader(data), 3, func(row *csvRow, target string) {
			n++
			if row.line <= last || (row.fault == faultNone) != (target != "") || row.fault != faultNone && row.problem() == "" {
				t.Fatalf("row %d: %+v target %q after line %d", n, row, target, last)
			}
			last = row.line
		}); err != nil {
			t.Fatal(err)
		}
		if n != len(rows)+problems.total {
			t.Fatalf("scan saw %d rows, parse %d good and %d bad", n, len(rows), problems.total)
		}
	})
}

func sharesOf(t *testing.T, e *env, name string) []state.Share {
	t.Helper()
	return entitlementOf(t, e.store.state(), name).Shares
}

func TestAddSharesJSON(t *testing.T) {
	t.Parallel()
	e := newEnv(t, seedState(t))
	const path = "/admin/v1/entitlements/customer-support-llm/shares"
	r := e.json(http.MethodPost, path, `{"targets":["444444444444","ou-ab12-mkt00001"],"monthly_tokens":100}`)
	wantStatus(t, r, http.StatusOK)
	var got sharesBody
	r.decode(t, &got)
	want := []state.Share{{Target: "ou-ab12-dev00001"}, {Target: "333333333333", MonthlyTokens: 2000000},
		{Target: "444444444444", MonthlyTokens: 100}, {Target: "ou-ab12-mkt00001", MonthlyTokens: 100}}
	if got.Entitlement != "customer-support-llm" || !reflect.DeepEqual(got.Shares, want) {
		t.Fatalf("response %+v", got)
	}
	if s := sharesOf(t, e, "customer-support-llm"); !reflect.DeepEqual(s, want) {
		t.Fatalf("stored %+v", s)
	}
	v := e.store.ver()

	// Adding again is idempotent; a new cap updates the share.
	wantStatus(t, e.json(http.MethodPost, path, `{"targets":["444444444444"],"monthly_tokens":100}`), http.StatusOK)
	if e.store.ver() != v {
		t.Fatal("re-adding the same share wrote a new version")
	}
	wantStatus(t, e.json(http.MethodPost, path, `{"targets":["444444444444"],"monthly_tokens":7}`), http.StatusOK)
	if s := sharesOf(t, e, "customer-support-llm"); s[2].MonthlyTokens != 7 || len(s) != 4 {
		t.Fatalf("stored %+v", s)
	}
	if a := e.store.auditActions(); !slices.Equal(a, []string{"share.add", "share.add"}) {
		t.Fatalf("audit actions %v", a)
	}
	if u := entitlementOf(t, e.store.state(), "customer-support-llm").UpdatedAt; !u.Equal(t0) {
		t.Fatalf("updated_at %v", u)
	}
}

func TestAddSharesRefused(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, ent, ct, body string
		status              int
		code                string
		details             []string // "line:value" or "index:value"
	}{
		{name: "bad and unknown and outside scope (JSON)", ent: "dev-only", ct: "application/json",
			body:   `{"targets":["222222222222","nope","999999999999","333333333333","222222222222"]}`,
			status: http.StatusBadRequest, code: codeValidationFailed,
			details: []string{"i1:nope", "i4:222222222222"}}, // format problems first, before any lookup
		{name: "unknown and outside scope (JSON)", ent: "dev-only", ct: "application/json",
			body:   `{"targets":["222222222222","999999999999","333333333333","ou-ab12-web00001","o-exampleorg1"]}`,
			status: http.StatusBadRequest, code: codeValidationFailed,
			details: []string{"i1:999999999999", "i2:333333333333", "i4:o-exampleorg1"}},
		{name: "CSV with line numbers", ent: "dev-only", ct: "text/csv",
			body:   "target,monthly_tokens\r\n222222222222,5\r\n\r\n999999999999\r\n333333333333\r\nou-ab12-web00001",
			status: http.StatusBadRequest, code: codeValidationFailed,
			details: []string{"l4:999999999999", "l5:333333333333"}},
		{name: "CSV format errors", ent: "customer-support-llm", ct: "text/csv; charset=utf-8",
			body:   "222222222222\nbogus\n222222222222\n",
			status: http.StatusBadRequest, code: codeValidationFailed,
			details: []string{"l2:bogus", "l3:222222222222"}},
		{name: "empty targets", ent: "dev-only", ct: "application/json", body: `{"targets":[]}`,
			status: http.StatusBadRequest, code: codeBadRequest},
		{name: "empty CSV", ent: "dev-only", ct: "text/csv", body: "target\n# none\n",
			status: http.StatusBadRequest, code: codeBadRequest},
		{name: "negative JSON cap", ent: "dev-only", ct: "application/json", body: `{"targets":["222222222222"],"monthly_tokens":-1}`,
			status: http.StatusBadRequest, code: codeBadRequest},
		{name: "unknown entitlement", ent: "nope", ct: "application/json", body: `{"targets":["222222222222"]}`,
			status: http.StatusNotFound, code: codeNotFound},
		{name: "wrong media type", ent: "dev-only", ct: "application/xml", body: `<x/>`,
			status: http.StatusUnsupportedMediaType, code: codeUnsupportedMediaType},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, seedState(t))
			r := e.do(http.MethodPost, "/admin/v1/entitlements/"+tt.ent+"/shares", tt.ct, tt.body)
			p := wantError(t, r, tt.status, tt.code)
			if e.store.ver() != 0 {
				t.Fatal("something was applied")
			}
			if tt.details == nil {
				return
			}
			if !strings.Contains(p.Message, "nothing was applied") {
				t.Errorf("message %q", p.Message)
			}
			var got []string
			for _, d := range r.problems(t) {
				if d.Line > 0 {
					got = append(got, fmt.Sprintf("l%d:%s", d.Line, d.Value))
				} else {
					got = append(got, fmt.Sprintf("i%d:%s", *d.Index, d.Value))
				}
				if d.Problem == "" {
					t.Errorf("detail without problem: %+v", d)
				}
			}
			if !slices.Equal(got, tt.details) {
				t.Fatalf("details %v, want %v\n%s", got, tt.details, r.body)
			}
		})
	}
}

// TestAddSharesBadRowsBounded: an upload with a million bad rows gets an error
// that lists the first 100 problems and counts them all, a few kilobytes
// whatever the upload's size.
func TestAddSharesBadRowsBounded(t *testing.T) {
	t.Parallel()
	const path = "/admin/v1/entitlements/customer-support-llm/shares"
	var quoted []string
	for i := range 200_000 {
		quoted = append(quoted, fmt.Sprintf(`"x%d"`, i))
	}
	tests := []struct {
		name, ct, body string
		total          int
	}{
		{"CSV of bad rows", "text/csv", strings.Repeat("22222222222x,1,2\n", 10<<20/17), 10 << 20 / 17},
		{"CSV of long lines", "text/csv", strings.Repeat(strings.Repeat("2", maxCSVLine+100)+"\n", 2000), 2000},
		{"JSON of bad targets", "application/json", `{"targets":[` + strings.Join(quoted, ",") + `]}`, 200_000},
		// Well-formed but unknown accounts: refused when checked against the organization.
		{"CSV of unknown accounts", "text/csv", string(csvOfAccounts(100_000)), 100_000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, seedState(t))
			r := e.do(http.MethodPost, path, tt.ct, tt.body)
			p := wantError(t, r, http.StatusBadRequest, codeValidationFailed)
			if want := fmt.Sprintf("%d targets are invalid", tt.total); !strings.Contains(p.Message, want) || !strings.Contains(p.Message, "the first 100 are listed") {
				t.Errorf("message %q, want %q and the first 100 listed", p.Message, want)
			}
			if n := len(r.problems(t)); n != maxProblems {
				t.Errorf("%d problems listed, want %d", n, maxProblems)
			}
			if len(r.body) > 32<<10 {
				t.Errorf("the error body is %d bytes for a %d-byte upload", len(r.body), len(tt.body))
			}
			if e.store.ver() != 0 {
				t.Fatal("something was applied")
			}
		})
	}
}

func TestAddSharesCSV(t *testing.T) {
	t.Parallel()
	e := newEnv(t, seedState(t))
	csv := "# dev teams\r\naccount_id,monthly_tokens\r\n  222222222222 , 50 \r\n\r\nou-ab12-web00001\r\n"
	r := e.do(http.MethodPost, "/admin/v1/entitlements/dev-only/shares?monthly_tokens=9", "text/csv", csv)
	wantStatus(t, r, http.StatusOK)
	want := []state.Share{{Target: "222222222222", MonthlyTokens: 50}, {Target: "ou-ab12-web00001", MonthlyTokens: 9}}
	if s := sharesOf(t, e, "dev-only"); !reflect.DeepEqual(s, want) {
		t.Fatalf("stored %+v", s)
	}
	wantError(t, e.do(http.MethodPost, "/admin/v1/entitlements/dev-only/shares?monthly_tokens=x", "text/csv", csv),
		http.StatusBadRequest, codeBadRequest)
}

func TestRemoveShare(t *testing.T) {
	t.Parallel()
	e := newEnv(t, seedState(t))
	wantStatus(t, e.do(http.MethodDelete, "/admin/v1/entitlements/customer-support-llm/shares/333333333333", "", ""), http.StatusNoContent)
	if s := sharesOf(t, e, "customer-support-llm"); !reflect.DeepEqual(s, []state.Share{{Target: "ou-ab12-dev00001"}}) {
		t.Fatalf("stored %+v", s)
	}
	wantError(t, e.do(http.MethodDelete, "/admin/v1/entitlements/customer-support-llm/shares/333333333333", "", ""), http.StatusNotFound, codeNotFound)
	wantError(t, e.do(http.MethodDelete, "/admin/v1/entitlements/nope/shares/333333333333", "", ""), http.StatusNotFound, codeNotFound)
	if a := e.store.auditActions(); !slices.Equal(a, []string{"share.remove"}) {
		t.Fatalf("audit actions %v", a)
	}
}

func TestOrgIndexInside(t *testing.T) {
	t.Parallel()
	x := newOrgIndex(seedState(t))
	tests := []struct {
		scope  []string
		target string
		want   bool
	}{
		{nil, "444444444444", true},
		{[]string{"o-exampleorg1"}, "ou-ab12-web00001", true},
		{[]string{"r-ab12"}, "o-exampleorg1", true},
		{[]string{"ou-ab12-dev00001"}, "444444444444", true}, // through a nested OU
		{[]string{"ou-ab12-dev00001"}, "ou-ab12-web00001", true},
		{[]string{"ou-ab12-dev00001"}, "333333333333", false},
		{[]string{"ou-ab12-dev00001"}, "o-exampleorg1", false},
		{[]string{"222222222222"}, "222222222222", true},
		{[]string{"222222222222"}, "ou-ab12-dev00001", false},
	}
	for _, tt := range tests {
		if got := x.inside(tt.scope, tt.target); got != tt.want {
			t.Errorf("inside(%v, %s) = %v, want %v", tt.scope, tt.target, got, tt.want)
		}
	}
}
