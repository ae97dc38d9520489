package state

import (
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/bedrock-gateway/gateway/internal/testutil/seed"
)

// loadExample returns the shared example state file (seed.Example) resolved,
// normalized and validated.
func loadExample(t testing.TB) *State {
	t.Helper()
	s, err := LoadFile(seed.ExampleFile(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.ResolveSecrets(seed.LookupEnv); err != nil {
		t.Fatal(err)
	}
	s.Normalize()
	if err := s.Validate(); err != nil {
		t.Fatalf("example does not validate:\n%v", err)
	}
	return s
}

func TestExampleFile(t *testing.T) {
	t.Parallel()
	s := loadExample(t)
	o := s.Organization
	if o.ID != "o-exampleorg1" || o.HubAccount != "111111111111" || o.Root != "r-ab12" {
		t.Errorf("organization = %+v", o)
	}
	if got := len(o.Units); got != 3 {
		t.Errorf("%d units, want 3", got)
	}
	if o.Accounts[2].Team != "data-science" || o.Accounts[1].Unit != "ou-ab12-dev00001" {
		t.Errorf("accounts = %+v", o.Accounts)
	}
	e := s.Entitlements[0]
	want := Entitlement{
		Name:  "customer-support-llm",
		Model: "anthropic.claude-3-5-haiku-20241022-v1:0",
		Scope: []string{"o-exampleorg1"},
		Limits: Limits{MonthlyTokens: 50000000, AccountMonthlyTokens: 10000000, RequestsPerMinute: 600,
			Count: CountTotal, AlertThresholds: []int{50, 80, 100}, OnStoreUnavailable: FailClosed, Estimate: EstimateTypical},
		State:  EntitlementActive,
		Shares: []Share{{Target: "ou-ab12-dev00001"}, {Target: "333333333333", MonthlyTokens: 2000000}},
	}
	if !reflect.DeepEqual(e, want) {
		t.Errorf("entitlement =\n%+v\nwant\n%+v", e, want)
	}
	c := s.Credentials
	if c[0].ID != "GWEXAMPLE00000000001" || c[0].Secret != seed.SupportBotSecret || c[0].SecretEnv != "" {
		t.Errorf("credential 0 = %+v", c[0])
	}
	if c[1].Secret != "not-for-production" {
		t.Errorf("credential 1 = %+v", c[1])
	}
	if c[2].ID != "key-"+seed.NotebooksKeySHA256[:16] || c[2].KeySHA256 != seed.NotebooksKeySHA256 || c[2].Key != "" {
		t.Errorf("credential 2 = %+v", c[2])
	}
}

// Every problem at once, each where the user wrote it, in the user's terms.
func TestParseReportsEveryProblem(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := dir + "/state.yaml"
	doc := "organization:\n  id: o-exampleorg1\n  hub_acount: \"111111111111\"\nentitlements:\n  - name: a\n    modle: m\n    limits: {monthly_tokens: many, estimat: strict}\n"
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := LoadFile(path)
	var pe *ParseError
	if !errors.As(err, &pe) || len(pe.Problems) != 4 {
		t.Fatalf("got %v, want 4 problems", err)
	}
	for _, want := range []string{
		path + `:3:3: organization: unknown field "hub_acount" (did you mean "hub_account"?)`,
		path + `:6:5: entitlements[0]: unknown field "modle" (did you mean "model"?)`,
		path + `:7:36: entitlements[0].limits: unknown field "estimat" (did you mean "estimate"?)`,
		path + `:7:30: entitlements[0].limits.monthly_tokens: "many" is not a whole number`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "state.State") || strings.Contains(err.Error(), "state.Limits") || strings.Contains(err.Error(), "int64") {
		t.Errorf("error names Go types:\n%v", err)
	}
}

func TestParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		wantErr string // substring; empty means success
		check   func(*testing.T, *State)
	}{
		{name: "empty", in: "", wantErr: "empty"},
		{name: "comment only", in: "# nothing\n", wantErr: "empty"},
		{name: "unknown top-level field", in: "organisation: {}\n", wantErr: "organisation"},
		{name: "unknown nested field", in: "entitlements:\n  - name: a\n    limits: {monthly_token: 5}\n", wantErr: "monthly_token"},
		{name: "two documents", in: "organization: {id: o-exampleorg1}\n---\norganization: {id: o-exampleorg2}\n", wantErr: "more than one"},
		{name: "syntax error", in: "organization: [\n", wantErr: "line 1"},
		{name: "wrong type", in: "entitlements: {a: 1}\n", wantErr: "line 1, column 15: entitlements: a mapping is not a list"},
		{name: "misspelt key with a suggestion", in: "entitlments: []\n", wantErr: `line 1, column 1: unknown field "entitlments" (did you mean "entitlements"?)`},
		{name: "wrong scalar", in: "entitlements:\n  - name: a\n    limits: {monthly_tokens: lots}\n", wantErr: `line 3, column 30: entitlements[0].limits.monthly_tokens: "lots" is not a whole number`},
		{name: "unquoted account IDs stay text", in: "organization:\n  hub_account: 011111111111\n  accounts: [{id: 222222222222, name: x}]\n",
			check: func(t *testing.T, s *State) {
				if s.Organization.HubAccount != "011111111111" || s.Organization.Accounts[0].ID != "222222222222" {
					t.Errorf("organization = %+v", s.Organization)
				}
			}},
		{name: "json", in: `{"organization":{"id":"o-exampleorg1","hub_account":"111111111111"},"entitlements":[{"name":"a","model":"m","limits":{"monthly_tokens":5}}],"credentials":[{"account":"111111111111","kind":"sigv4","expires_at":"2030-01-02T03:04:05Z"}]}`,
			check: func(t *testing.T, s *State) {
				if s.Entitlements[0].Limits.MonthlyTokens != 5 {
					t.Errorf("limits = %+v", s.Entitlements[0].Limits)
				}
				if exp := s.Credentials[0].ExpiresAt; exp == nil || !exp.Equal(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)) {
					t.Errorf("expires_at = %v", exp)
				}
			}},
		{name: "json unknown field", in: `{"organization":{"id":"o-exampleorg1","hubAccount":"111111111111"}}`, wantErr: `organization: unknown field "hubAccount" (did you mean "hub_account"?)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := Parse([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Parse error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, s)
		})
	}
}

func TestLoadFileMissing(t *testing.T) {
	t.Parallel()
	if _, err := LoadFile("testdata/does-not-exist.yaml"); err == nil {
		t.Fatal("LoadFile of a missing file succeeded")
	}
}

func TestMarshalRoundTrip(t *testing.T) {
	t.Parallel()
	s := loadExample(t)
	exp := time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC)
	s.Credentials[1].ExpiresAt = &exp
	s.Entitlements[0].CreatedAt = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	s.Entitlements[0].Operations = []string{"Converse", "ConverseStream"}
	out, err := Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse(out)
	if err != nil {
		t.Fatalf("Parse(Marshal(s)): %v\n%s", err, out)
	}
	if !reflect.DeepEqual(s, back) {
		t.Errorf("round trip changed the state:\n%s", out)
	}
	again, err := Marshal(back)
	if err != nil {
		t.Fatal(err)
	}
	if string(again) != string(out) {
		t.Errorf("Marshal is not stable:\n%s\n---\n%s", out, again)
	}
	if !strings.Contains(string(out), `hub_account: "111111111111"`) {
		t.Errorf("account IDs must stay quoted:\n%s", out)
	}
	if strings.Contains(string(out), "updated_at") {
		t.Errorf("zero times must be omitted:\n%s", out)
	}
}

func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		"",
		"organization: {id: o-exampleorg1, hub_account: \"111111111111\"}\n",
		"entitlements: [{name: a, model: m, shares: [{target: o-exampleorg1}]}]\n",
		"credentials: [{account: \"1\", kind: api_key, key: k}]\n",
		"{\"organization\": {\"units\": [{\"id\": \"ou-ab12-12345678\", \"parent\": \"ou-ab12-12345678\"}]}}",
		"a: &a [*a]\n",
	} {
		f.Add([]byte(seed))
	}
	f.Add([]byte(seed.Example()))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse(data)
		if err != nil {
			return
		}
		// Nothing downstream of a successful parse may panic either.
		c := s.Clone()
		_ = c.ResolveSecrets(func(string) (string, bool) { return "0123456789abcdef", true })
		c.Normalize()
		_ = c.Validate()
		_ = c.References("ou-ab12-12345678")
		_ = Diff(s, c)
		if _, err := Marshal(c); err != nil {
			t.Fatalf("Marshal of a parsed state: %v", err)
		}
	})
}
