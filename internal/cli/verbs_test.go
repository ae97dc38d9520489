package cli

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/bedrock-gateway/gateway/internal/admin"
	"github.com/bedrock-gateway/gateway/internal/report"
	"github.com/bedrock-gateway/gateway/internal/state"
)

// verbs is every admin verb, with whether it has -o/--output.
var verbs = []struct {
	args   []string
	output bool
}{
	{[]string{"apply"}, true},
	{[]string{"export"}, true},
	{[]string{"audit"}, true},
	{[]string{"usage"}, true},
	{[]string{"quota"}, true},
	{[]string{"replicas"}, true},
	{[]string{"entitlements", "list"}, true},
	{[]string{"entitlements", "get"}, true},
	{[]string{"entitlements", "create"}, true},
	{[]string{"entitlements", "update"}, true},
	{[]string{"entitlements", "delete"}, false},
	{[]string{"shares", "add"}, true},
	{[]string{"shares", "remove"}, false},
	{[]string{"shares", "list"}, true},
	{[]string{"credentials", "issue"}, true},
	{[]string{"credentials", "list"}, true},
	{[]string{"credentials", "revoke"}, false},
	{[]string{"principals", "deny"}, false},
	{[]string{"principals", "allow"}, false},
	{[]string{"principals", "list"}, true},
}

// TestEveryVerbHelp: -h and --help print the verb's own usage on stderr and
// succeed.
func TestEveryVerbHelp(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	for _, v := range verbs {
		for _, flagName := range []string{"-h", "--help", "-help"} {
			name := strings.Join(v.args, " ")
			t.Run(name+flagName, func(t *testing.T) {
				t.Parallel()
				out, errOut, err := h.run(append(slices.Clone(v.args), flagName)...)
				if err != nil || out != "" {
					t.Fatalf("err %v, stdout %q", err, out)
				}
				if !strings.HasPrefix(errOut, "Usage: gateway "+name) || !strings.Contains(errOut, "-admin-url") {
					t.Fatalf("stderr %q", errOut)
				}
				if strings.Contains(errOut, "-output") != v.output {
					t.Fatalf("--output listed: %v, want %v:\n%s", !v.output, v.output, errOut)
				}
			})
		}
	}
}

// TestEveryVerbUnknownFlag: a misspelt flag is one line naming the command,
// the flag and the likely one, then where the usage is; nothing else is
// printed.
func TestEveryVerbUnknownFlag(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	type tc struct {
		flag, want string
	}
	for _, v := range verbs {
		name := "gateway " + strings.Join(v.args, " ")
		cases := []tc{
			{"--admin-ulr", name + ": unknown flag --admin-ulr (did you mean --admin-url?)"},
			{"--zzzzzz=1", name + ": unknown flag --zzzzzz"},
		}
		if v.output {
			cases = append(cases, tc{"--ouput", name + ": unknown flag --ouput (did you mean --output?)"})
		}
		for _, c := range cases {
			t.Run(name+c.flag, func(t *testing.T) {
				t.Parallel()
				out, errOut, err := h.run(append(slices.Clone(v.args), "x", c.flag, "json")...)
				var ue *UsageError
				if !errors.As(err, &ue) {
					t.Fatalf("err %v, want a *UsageError", err)
				}
				want := c.want + "\nrun '" + name + " -h' for usage"
				if err.Error() != want || out != "" || errOut != "" {
					t.Fatalf("err %q, want %q; stdout %q, stderr %q", err, want, out, errOut)
				}
			})
		}
	}
}

func TestUnknownSubcommand(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"entitlements", "lst"}, `gateway entitlements: unknown subcommand "lst" (did you mean list?)`},
		{[]string{"entitlements", "updte"}, `gateway entitlements: unknown subcommand "updte" (did you mean update?)`},
		{[]string{"shares", "frob"}, `gateway shares: unknown subcommand "frob"; one of add, remove, list`},
		{[]string{"credentials", "isue"}, `gateway credentials: unknown subcommand "isue" (did you mean issue?)`},
		{[]string{"credentials"}, `gateway credentials: a subcommand is required`},
	}
	for _, tt := range tests {
		_, _, err := h.run(tt.args...)
		var ue *UsageError
		if !errors.As(err, &ue) || ue.Msg != tt.want {
			t.Errorf("%v: err %v, want %q", tt.args, err, tt.want)
		}
	}
}

// fixedQuota answers a quota report from the entitlement's limits, with
// usage per target.
type fixedQuota struct {
	ms   *memStore
	used map[string]int64
}

func (f fixedQuota) Quota(_ context.Context, name string) (*report.QuotaReport, error) {
	st := f.ms.state()
	rep := &report.QuotaReport{Entitlement: name, Month: "2026-10", ResetAt: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), Caps: []report.CapReport{}}
	for _, e := range st.Entitlements {
		if e.Name != name {
			continue
		}
		add := func(level, target string, limit int64) {
			if limit > 0 {
				u := f.used[target]
				rep.Caps = append(rep.Caps, report.CapReport{Level: level, Target: target, Limit: limit, Used: u, Reserved: 7,
					Remaining: limit - u - 7, PercentUsed: float64(u*1000/limit) / 10})
			}
		}
		add(report.LevelEntitlement, e.Name, e.Limits.MonthlyTokens)
		for _, s := range e.Shares {
			add(report.LevelShare, s.Target, s.MonthlyTokens)
		}
	}
	return rep, nil
}

func quotaHarness(t *testing.T) *harness {
	t.Helper()
	ms := &memStore{st: &state.State{}}
	h := newHarness(t, func(o *admin.Options) {
		o.Store = ms
		o.Quota = fixedQuota{ms: ms, used: map[string]int64{"customer-support-llm": 12_500_000, "333333333333": 500_000}}
		o.Usage = fixedUsage{report.Report{GroupBy: "team", Rows: []report.ReportRow{{Team: "data-science", Requests: 3, TotalTokens: 30}}}}
	})
	h.store = ms
	h.apply()
	// Uncapped: not in the report of every entitlement.
	h.ok("entitlements", "create", "open", "--model", "amazon.nova-lite-v1:0")
	return h
}

func TestQuotaCommand(t *testing.T) {
	t.Parallel()
	h := quotaHarness(t)
	out := h.ok("quota", "customer-support-llm")
	wantContains(t, out, "ENTITLEMENT", "LEVEL", "RESERVED", "REMAINING", "RESETS_AT",
		"customer-support-llm  entitlement  customer-support-llm  50,000,000  12,500,000", "37,499,993", "25",
		"share", "333333333333", "2,000,000", "500,000", "2026-11-01T00:00:00Z")
	all := h.ok("quota")
	if all != out || strings.Contains(all, "open") {
		t.Fatalf("quota of every capped entitlement:\n%s\nwant:\n%s", all, out)
	}
	var one report.QuotaReport
	if err := json.Unmarshal([]byte(h.ok("quota", "customer-support-llm", "-o", "json")), &one); err != nil ||
		len(one.Caps) != 2 || one.Caps[0].Remaining != 37_499_993 {
		t.Fatalf("json %+v: %v", one, err)
	}
	var every struct{ Quotas []report.QuotaReport }
	if err := json.Unmarshal([]byte(h.ok("quota", "-o", "json")), &every); err != nil || len(every.Quotas) != 1 ||
		every.Quotas[0].Entitlement != "customer-support-llm" {
		t.Fatalf("json %+v: %v", every, err)
	}
	rows, err := csv.NewReader(strings.NewReader(h.ok("quota", "-o", "csv"))).ReadAll()
	if err != nil || len(rows) != 3 || !slices.Equal(rows[1], []string{"customer-support-llm", "entitlement", "customer-support-llm",
		"50000000", "12500000", "7", "37499993", "25", "2026-11-01T00:00:00Z"}) {
		t.Fatalf("csv %q: %v", rows, err)
	}
	wantContains(t, h.ok("quota", "open"), "no monthly caps")
	_, _, err = h.run("quota", "nope")
	wantAPIError(t, err, "not_found")
}

// TestEntitlementsUpdate: only the fields given change; a limit flag keeps
// the other limits.
func TestEntitlementsUpdate(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.apply()
	get := func() state.Entitlement {
		t.Helper()
		for _, e := range h.store.state().Entitlements {
			if e.Name == "customer-support-llm" {
				return e
			}
		}
		t.Fatal("entitlement gone")
		return state.Entitlement{}
	}
	before := get()
	out := h.ok("entitlements", "update", "customer-support-llm", "--monthly-tokens", "5000")
	wantContains(t, out, "updated entitlement customer-support-llm", "5,000", "10,000,000", "600")
	after := get()
	want := before.Limits
	want.MonthlyTokens = 5000
	if !reflectEqual(after.Limits, want) || !slices.Equal(after.Scope, before.Scope) || len(after.Shares) != 2 {
		t.Fatalf("limits %+v, want %+v; scope %v, shares %v", after.Limits, want, after.Scope, after.Shares)
	}

	h.ok("entitlements", "update", "customer-support-llm", "--description", "support bots", "--operations", "Converse,ConverseStream",
		"--alert-thresholds", "90%,100", "--requests-per-minute", "0", "--state", "suspended", "--scope", "ou-ab12-dev00001,333333333333")
	after = get()
	want.RequestsPerMinute, want.AlertThresholds = 0, []int{90, 100}
	if !reflectEqual(after.Limits, want) || after.Description != "support bots" || after.State != state.EntitlementSuspended ||
		!slices.Equal(after.Operations, []string{"Converse", "ConverseStream"}) || len(after.Scope) != 2 || after.Model != before.Model {
		t.Fatalf("after update: %+v", after)
	}
	// An empty list restores the default.
	h.ok("entitlements", "update", "customer-support-llm", "--operations", "")
	if ops := get().Operations; len(ops) != 0 {
		t.Fatalf("operations %v", ops)
	}
	var res struct{ Entitlement state.Entitlement }
	if err := yaml.Unmarshal([]byte(h.ok("entitlements", "update", "customer-support-llm", "--state", "active", "-o", "yaml")), &res); err != nil ||
		res.Entitlement.State != state.EntitlementActive {
		t.Fatalf("yaml %+v: %v", res, err)
	}

	for _, args := range [][]string{
		{"entitlements", "update", "customer-support-llm"},
		{"entitlements", "update", "--monthly-tokens", "1"},
		{"entitlements", "update", "customer-support-llm", "--state", "paused"},
		{"entitlements", "update", "customer-support-llm", "--alert-thresholds", "half"},
	} {
		var ue *UsageError
		if _, _, err := h.run(args...); !errors.As(err, &ue) {
			t.Errorf("%v: err %v, want a usage error", args, err)
		}
	}
	_, _, err := h.run("entitlements", "update", "nope", "--description", "x")
	wantAPIError(t, err, "not_found")
	_, _, err = h.run("entitlements", "update", "nope", "--monthly-tokens", "1")
	wantAPIError(t, err, "not_found")
	_, _, err = h.run("entitlements", "update", "customer-support-llm", "--count", "everything")
	wantAPIError(t, err, "validation_failed")
}

func reflectEqual(a, b state.Limits) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

// TestReadVerbsOutput: every read verb prints table (the default), json,
// yaml and csv, each parseable and holding the same data.
func TestReadVerbsOutput(t *testing.T) {
	t.Parallel()
	h := quotaHarness(t)
	tests := []struct {
		args []string
		want string // in every format
		csv  bool
	}{
		{[]string{"entitlements", "list"}, "customer-support-llm", true},
		{[]string{"entitlements", "get", "customer-support-llm"}, "anthropic.claude-3-5-haiku", false},
		{[]string{"shares", "list", "customer-support-llm"}, "ou-ab12-dev00001", true},
		{[]string{"credentials", "list"}, "GWEXAMPLE00000000002", true},
		{[]string{"audit"}, "entitlement.create", true},
		{[]string{"quota"}, "333333333333", true},
		{[]string{"quota", "customer-support-llm"}, "333333333333", true},
		{[]string{"usage"}, "data-science", true},
	}
	for _, tt := range tests {
		name := strings.Join(tt.args, " ")
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			table := h.ok(tt.args...)
			if table != h.ok(append(slices.Clone(tt.args), "-o", "table")...) {
				t.Error("table is not the default")
			}
			js := h.ok(append(slices.Clone(tt.args), "--output", "json")...)
			var fromJSON, fromYAML any
			if err := json.Unmarshal([]byte(js), &fromJSON); err != nil {
				t.Fatalf("json: %v\n%s", err, js)
			}
			ym := h.ok(append(slices.Clone(tt.args), "-o", "yaml")...)
			if err := yaml.Unmarshal([]byte(ym), &fromYAML); err != nil {
				t.Fatalf("yaml: %v\n%s", err, ym)
			}
			// YAML says the same as JSON: same keys, same values, strings
			// that look like numbers still strings.
			if j, _ := json.Marshal(fromJSON); string(j) != mustJSON(t, fromYAML) {
				t.Errorf("yaml and json differ:\n%s\n%s", ym, js)
			}
			for _, s := range []string{table, js, ym} {
				wantContains(t, s, tt.want)
			}
			cs, _, err := h.run(append(slices.Clone(tt.args), "-o", "csv")...)
			if !tt.csv {
				var ue *UsageError
				if !errors.As(err, &ue) || !strings.Contains(err.Error(), "table, json or yaml") {
					t.Fatalf("-o csv: %v", err)
				}
				return
			}
			rows, err := csv.NewReader(strings.NewReader(cs)).ReadAll()
			if err != nil || len(rows) < 2 {
				t.Fatalf("csv %q: %v", cs, err)
			}
			wantContains(t, cs, tt.want)
		})
	}
	for _, args := range [][]string{{"entitlements", "list", "-o", "xml"}, {"quota", "--output", "wide"}} {
		var ue *UsageError
		if _, _, err := h.run(args...); !errors.As(err, &ue) || !strings.Contains(err.Error(), "table, json, yaml or csv") {
			t.Errorf("%v: %v", args, err)
		}
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestConnectionRefused: the error names the URL tried and how to change it.
func TestConnectionRefused(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	ln.Close() // nothing listens there now
	h := newHarness(t)
	for _, viaEnv := range []bool{false, true} {
		args := []string{"entitlements", "list"}
		if viaEnv {
			h.vars[EnvAdminURL] = url
		} else {
			args = append(args, "--admin-url", url)
		}
		_, _, err := h.run(args...)
		if err == nil {
			t.Fatal("no error")
		}
		for _, want := range []string{"cannot reach the admin API at " + url, "connection refused", "--admin-url", EnvAdminURL} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q lacks %q", err, want)
			}
		}
	}
}
