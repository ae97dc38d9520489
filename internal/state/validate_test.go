package state

import (
	"errors"
	"strings"
	"testing"
)

const (
	testOrg  = "o-testorg0001"
	testRoot = "r-root"
	ouTop    = "ou-root-top00001" // under the root
	ouMid    = "ou-root-mid00001" // under ouTop
	ouLeaf   = "ou-root-leaf0001" // under ouMid
	ouOther  = "ou-root-other001" // under the root
	acctHub  = "111111111111"     // in the root
	acctLeaf = "222222222222"     // in ouLeaf
	acctOth  = "333333333333"     // in ouOther
	testAKID = "GWTEST000000000000001"
)

// validState is a small organization exercising every kind of item:
//
//	root ─┬─ ouTop ── ouMid ── ouLeaf ── acctLeaf
//	      ├─ ouOther ── acctOth
//	      └─ acctHub
func validState() *State {
	return &State{
		Organization: Organization{
			ID: testOrg, Root: testRoot, HubAccount: acctHub,
			Units: []Unit{
				{ID: ouTop, Name: "Top"},
				{ID: ouMid, Name: "Mid", Parent: ouTop},
				{ID: ouLeaf, Name: "Leaf", Parent: ouMid},
				{ID: ouOther, Name: "Other", Parent: testRoot},
			},
			Accounts: []Account{
				{ID: acctHub, Name: "hub"},
				{ID: acctLeaf, Name: "leaf", Unit: ouLeaf, Team: "leaf-team"},
				{ID: acctOth, Name: "other", Unit: ouOther},
			},
		},
		Entitlements: []Entitlement{
			{Name: "whole-org", Model: "anthropic.claude-3-haiku-20240307-v1:0", Shares: []Share{{Target: testOrg}}},
			{Name: "top-only", Model: "arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-lite-v1:0", Region: "us-east-1",
				Scope:      []string{ouTop},
				Operations: []string{"Converse", "ConverseStream"},
				Limits: Limits{MonthlyTokens: 1000, AccountMonthlyTokens: 100, RequestsPerMinute: 10, TokensPerMinute: 50,
					Count: CountOutput, AlertThresholds: []int{10, 90}, OnStoreUnavailable: FailOpen, Estimate: EstimateStrict},
				State:               EntitlementSuspended,
				Shares:              []Share{{Target: ouMid}, {Target: acctLeaf, MonthlyTokens: 10}},
				AsyncOutputPrefixes: []string{"s3://top-output/{account}"}},
		},
		Credentials: []Credential{
			{Account: acctLeaf, Kind: KindSigV4, Label: "app", AccessKeyID: "GWTEST00000000000001", Secret: "0123456789abcdef"},
			{Account: acctOth, Kind: KindAPIKey, Label: "notebook", KeySHA256: strings.Repeat("ab", 32)},
		},
	}
}

func TestValidateValid(t *testing.T) {
	t.Parallel()
	tests := map[string]func(*State){
		"as built":              func(*State) {},
		"normalized":            (*State).Normalize,
		"empty state":           func(s *State) { *s = State{} },
		"root inferred":         func(s *State) { s.Organization.Root = "" },
		"no root at all":        func(s *State) { s.Organization.Root = ""; s.Organization.Units[3].Parent = "" },
		"account in root by ID": func(s *State) { s.Organization.Accounts[0].Unit = testRoot },
		"share to root":         func(s *State) { s.Entitlements[0].Shares = []Share{{Target: testRoot}} },
		"org scope, root share": func(s *State) {
			s.Entitlements[0].Scope = []string{testOrg}
			s.Entitlements[0].Shares = []Share{{Target: testRoot}, {Target: acctLeaf}}
		},
		"root scope, org share": func(s *State) {
			s.Entitlements[0].Scope = []string{testRoot}
			s.Entitlements[0].Shares = []Share{{Target: testOrg}}
		},
		"account scope, account share": func(s *State) {
			s.Entitlements[1].Scope = []string{acctOth}
			s.Entitlements[1].Shares = []Share{{Target: acctOth}}
		},
		"deep share in scope": func(s *State) { s.Entitlements[1].Shares = []Share{{Target: ouLeaf}, {Target: ouTop}} },
		"all runtime operations": func(s *State) {
			s.Entitlements[0].Operations = []string{"InvokeModel", "InvokeModelWithResponseStream", "Converse", "ConverseStream",
				"CountTokens", "ApplyGuardrail", "StartAsyncInvoke", "GetAsyncInvoke", "ListAsyncInvokes", "InvokeModelWithBidirectionalStream"}
		},
		"secret at 128":          func(s *State) { s.Credentials[0].Secret = strings.Repeat("x", 128) },
		"explicit credential id": func(s *State) { s.Credentials[1].ID = "notebook-1" },
		"model at 2048":          func(s *State) { s.Entitlements[0].Model = strings.Repeat("m", 2048) },
		"label at 64 runes":      func(s *State) { s.Credentials[0].Label = strings.Repeat("é", 64) },
		"threshold 100 only":     func(s *State) { s.Entitlements[0].Limits.AlertThresholds = []int{100} },
		"async output anywhere":  func(s *State) { s.Entitlements[0].AsyncOutputPrefixes = []string{"*"} },
		"async output prefixes": func(s *State) {
			s.Entitlements[0].AsyncOutputPrefixes = []string{"s3://video-out", "s3://shared.bucket/teams/{account}/", "s3://out-{account}/jobs"}
		},
		"every service tier": func(s *State) {
			s.Entitlements[0].ServiceTiers = []string{"default", "priority", "flex", "reserved", "optimized"}
		},
		"billing per team":        func(s *State) { s.Entitlements[0].Billing.Profiles = ProfilesPerTeam },
		"billing per entitlement": func(s *State) { s.Entitlements[1].Billing.Profiles = ProfilesPerEntitlement },
		"billing none":            func(s *State) { s.Entitlements[0].Billing.Profiles = ProfilesNone },
		"billing on a cross-region profile": func(s *State) {
			s.Entitlements[0].Model = "us.anthropic.claude-3-5-haiku-20241022-v1:0"
			s.Entitlements[0].Billing.Profiles = ProfilesPerTeam
		},
		"guardrail IDs and ARNs": func(s *State) {
			s.Entitlements[0].Guardrails = []string{"abc123", "arn:aws:bedrock:us-east-1:111111111111:guardrail/def456"}
		},
	}
	for name, mutate := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := validState()
			mutate(s)
			if err := s.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
		})
	}
}

func TestValidateRules(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		mutate func(*State)
		want   []string // each must be one of the reported problems (substring)
	}{
		// Organization.
		{"org id missing", func(s *State) { s.Organization.ID = "" }, []string{`organization: id "" is not an organization ID`,
			`entitlements[0] (whole-org): share target "o-testorg0001" is not the organization`}},
		{"org id format", func(s *State) { s.Organization.ID = "o-short" }, []string{`organization: id "o-short"`,
			`entitlements[0] (whole-org): share target "o-testorg0001" is not the organization`}},
		{"root format", func(s *State) { s.Organization.Root = "r-x" }, []string{`organization: root "r-x" is not a root ID`,
			"organization.units[3] (" + ouOther + "): parent r-root is not the organization root r-x"}},
		{"hub format", func(s *State) { s.Organization.HubAccount = "1234" }, []string{`organization: hub_account "1234" is not a 12-digit`}},
		{"unit id format", func(s *State) { s.Organization.Units[3].ID = "ou-bad" }, []string{`organization.units[3] (ou-bad): id "ou-bad" is not an OU ID`,
			"organization.accounts[2] (" + acctOth + "): unit " + ouOther + " is not one of the units"}},
		{"duplicate unit", func(s *State) { s.Organization.Units[3].ID = ouTop }, []string{"organization.units[3] (" + ouTop + "): duplicate OU ID (also organization.units[0])",
			"organization.accounts[2] (" + acctOth + "): unit " + ouOther + " is not one of the units"}},
		{"unit name missing", func(s *State) { s.Organization.Units[0].Name = "" }, []string{"organization.units[0] (" + ouTop + "): name is missing"}},
		{"unit name control char", func(s *State) { s.Organization.Units[0].Name = "a\x00b" }, []string{"name must be printable"}},
		{"unit name too long", func(s *State) { s.Organization.Units[0].Name = strings.Repeat("n", 129) }, []string{"name is longer than 128"}},
		{"parent missing", func(s *State) { s.Organization.Units[1].Parent = "ou-root-nothere1" }, []string{"organization.units[1] (" + ouMid + "): parent ou-root-nothere1 is not one of the units"}},
		{"parent other root", func(s *State) { s.Organization.Units[1].Parent = "r-else" }, []string{"parent r-else is not the organization root r-root"}},
		{"own parent", func(s *State) { s.Organization.Units[0].Parent = ouTop }, []string{"organization.units[0] (" + ouTop + "): is its own parent"}},
		{"cycle", func(s *State) { s.Organization.Units[0].Parent = ouLeaf }, []string{
			"organization.units[0] (" + ouTop + "): parent chain forms a cycle",
			"organization.units[1] (" + ouMid + "): parent chain forms a cycle",
			"organization.units[2] (" + ouLeaf + "): parent chain forms a cycle"}},
		{"account id format", func(s *State) { s.Organization.Accounts[2].ID = "33" }, []string{`organization.accounts[2] (33): id "33" is not a 12-digit account ID`,
			"credentials[1] (notebook): account " + acctOth + " is not one of the accounts"}},
		{"duplicate account", func(s *State) { s.Organization.Accounts[2].ID = acctLeaf }, []string{"organization.accounts[2] (" + acctLeaf + "): duplicate account ID (also organization.accounts[1])",
			"credentials[1] (notebook): account " + acctOth + " is not one of the accounts"}},
		{"account name missing", func(s *State) { s.Organization.Accounts[1].Name = "" }, []string{"organization.accounts[1] (" + acctLeaf + "): name is missing"}},
		{"team too long", func(s *State) { s.Organization.Accounts[1].Team = strings.Repeat("t", 65) }, []string{"team is longer than 64"}},
		{"account state unknown", func(s *State) { s.Organization.Accounts[1].State = "SUSPENDED" }, []string{`state "SUSPENDED" is not active, suspended or closed`}},
		{"account unit missing", func(s *State) { s.Organization.Accounts[1].Unit = "ou-root-nothere1" }, []string{"organization.accounts[1] (" + acctLeaf + "): unit ou-root-nothere1 is not one of the units"}},
		{"account other root", func(s *State) { s.Organization.Accounts[1].Unit = "r-else" }, []string{"unit r-else is not the organization root r-root"}},
		{"roots disagree", func(s *State) { s.Organization.Root = ""; s.Organization.Accounts[0].Unit = "r-else" }, []string{"organization.accounts[0] (" + acctHub + "): unit r-else is not the organization root r-root"}},

		// Entitlements.
		{"name invalid", func(s *State) { s.Entitlements[0].Name = "Whole_Org" }, []string{`entitlements[0] (Whole_Org): name "Whole_Org" must be`}},
		{"name duplicate", func(s *State) { s.Entitlements[1].Name = "whole-org" }, []string{"entitlements[1] (whole-org): duplicate name (also entitlements[0])"}},
		{"model missing", func(s *State) { s.Entitlements[0].Model = "" }, []string{"entitlements[0] (whole-org): model is missing"}},
		{"model too long", func(s *State) { s.Entitlements[0].Model = strings.Repeat("m", 2049) }, []string{"model is longer than 2048"}},
		{"model with space", func(s *State) { s.Entitlements[0].Model = "a b" }, []string{"model must not contain spaces"}},
		{"model with newline", func(s *State) { s.Entitlements[0].Model = "a\nb" }, []string{"model must not contain spaces"}},
		{"region invalid", func(s *State) { s.Entitlements[0].Region = "US East" }, []string{`region "US East" is not a region name`}},
		{"description too long", func(s *State) { s.Entitlements[0].Description = strings.Repeat("d", 1025) }, []string{"description is longer than 1024"}},
		{"state invalid", func(s *State) { s.Entitlements[0].State = "paused" }, []string{`state "paused" must be active or suspended`}},
		{"scope unknown", func(s *State) { s.Entitlements[1].Scope = []string{"ou-root-nothere1"} }, []string{`entitlements[1] (top-only): scope entry "ou-root-nothere1" is not the organization`}},
		{"scope other org", func(s *State) { s.Entitlements[1].Scope = []string{"o-otherorg0001"} }, []string{`scope entry "o-otherorg0001"`}},
		{"scope duplicate", func(s *State) { s.Entitlements[1].Scope = []string{ouTop, ouTop} }, []string{"scope names " + ouTop + " twice"}},
		{"share unknown", func(s *State) { s.Entitlements[0].Shares = []Share{{Target: "444444444444"}} }, []string{`entitlements[0] (whole-org): share target "444444444444" is not the organization`}},
		{"share empty", func(s *State) { s.Entitlements[0].Shares = []Share{{}} }, []string{`share target "" is not`}},
		{"share outside scope (OU)", func(s *State) { s.Entitlements[1].Shares = []Share{{Target: ouOther}} }, []string{"entitlements[1] (top-only): share target " + ouOther + " is outside the scope"}},
		{"share outside scope (account)", func(s *State) { s.Entitlements[1].Shares = []Share{{Target: acctOth}} }, []string{"share target " + acctOth + " is outside the scope"}},
		{"share outside scope (hub in root)", func(s *State) { s.Entitlements[1].Shares = []Share{{Target: acctHub}} }, []string{"share target " + acctHub + " is outside the scope"}},
		{"share of parent of scope", func(s *State) {
			s.Entitlements[1].Scope = []string{ouMid}
			s.Entitlements[1].Shares = []Share{{Target: ouTop}}
		}, []string{"share target " + ouTop + " is outside the scope"}},
		{"org share, OU scope", func(s *State) { s.Entitlements[1].Shares = []Share{{Target: testOrg}} }, []string{"share target " + testOrg + " is outside the scope"}},
		{"root share, OU scope", func(s *State) { s.Entitlements[1].Shares = []Share{{Target: testRoot}} }, []string{"share target " + testRoot + " is outside the scope"}},
		{"share duplicate", func(s *State) {
			s.Entitlements[0].Shares = []Share{{Target: acctLeaf}, {Target: acctLeaf, MonthlyTokens: 5}}
		}, []string{"share target " + acctLeaf + " appears twice"}},
		{"share negative cap", func(s *State) { s.Entitlements[0].Shares[0].MonthlyTokens = -1 }, []string{"share " + testOrg + ": monthly_tokens must not be negative"}},
		{"negative limits", func(s *State) {
			l := &s.Entitlements[0].Limits
			l.MonthlyTokens, l.AccountMonthlyTokens, l.RequestsPerMinute, l.TokensPerMinute = -1, -1, -1, -1
		}, []string{"limits.monthly_tokens must not be negative", "limits.account_monthly_tokens must not be negative",
			"limits.requests_per_minute must not be negative", "limits.tokens_per_minute must not be negative"}},
		{"count invalid", func(s *State) { s.Entitlements[0].Limits.Count = "cached" }, []string{`limits.count "cached" must be total, input or output`}},
		{"on_store_unavailable invalid", func(s *State) { s.Entitlements[0].Limits.OnStoreUnavailable = "open" }, []string{`limits.on_store_unavailable "open"`}},
		{"estimate invalid", func(s *State) { s.Entitlements[0].Limits.Estimate = "exact" }, []string{`limits.estimate "exact"`}},
		{"threshold zero", func(s *State) { s.Entitlements[0].Limits.AlertThresholds = []int{0, 50} }, []string{"limits.alert_thresholds: 0 is not a percentage"}},
		{"threshold over 100", func(s *State) { s.Entitlements[0].Limits.AlertThresholds = []int{50, 101} }, []string{"limits.alert_thresholds: 101 is not a percentage"}},
		{"thresholds not increasing", func(s *State) { s.Entitlements[0].Limits.AlertThresholds = []int{80, 50} }, []string{"strictly increasing (50 after 80)"}},
		{"thresholds repeated", func(s *State) { s.Entitlements[0].Limits.AlertThresholds = []int{50, 50} }, []string{"strictly increasing (50 after 50)"}},
		{"operation unknown", func(s *State) { s.Entitlements[0].Operations = []string{"Converse", "converse"} }, []string{`operation "converse" is not a runtime operation`}},
		{"operation control plane", func(s *State) { s.Entitlements[0].Operations = []string{"ListFoundationModels"} }, []string{`operation "ListFoundationModels" is not a runtime operation`}},
		{"operation twice", func(s *State) { s.Entitlements[0].Operations = []string{"Converse", "Converse"} }, []string{"operation Converse is listed twice"}},
		{"async output star among others", func(s *State) { s.Entitlements[0].AsyncOutputPrefixes = []string{"s3://bucket", "*"} }, []string{`"*" allows any destination and must be the only entry`}},
		{"async output not s3", func(s *State) { s.Entitlements[0].AsyncOutputPrefixes = []string{"https://bucket/out"} }, []string{`async_output_prefixes: "https://bucket/out" is not s3://BUCKET`}},
		{"async output no bucket", func(s *State) { s.Entitlements[0].AsyncOutputPrefixes = []string{"s3:///out"} }, []string{`"s3:///out" is not s3://BUCKET`}},
		{"async output dot-dot", func(s *State) { s.Entitlements[0].AsyncOutputPrefixes = []string{"s3://bucket/a/../b"} }, []string{`"s3://bucket/a/../b" is not s3://BUCKET`}},
		{"async output other placeholder", func(s *State) { s.Entitlements[0].AsyncOutputPrefixes = []string{"s3://bucket/{team}"} }, []string{`"s3://bucket/{team}" is not s3://BUCKET`}},
		{"async output glob", func(s *State) { s.Entitlements[0].AsyncOutputPrefixes = []string{"s3://bucket/*"} }, []string{`"s3://bucket/*" is not s3://BUCKET`}},
		{"async output twice", func(s *State) { s.Entitlements[0].AsyncOutputPrefixes = []string{"s3://bucket/a", "s3://bucket/a"} }, []string{"async_output_prefixes lists s3://bucket/a twice"}},
		{"service tier unknown", func(s *State) { s.Entitlements[0].ServiceTiers = []string{"priority", "Priority"} }, []string{`service tier "Priority" must be priority, flex, reserved, default or optimized`}},
		{"service tier twice", func(s *State) { s.Entitlements[0].ServiceTiers = []string{"flex", "flex"} }, []string{"service tier flex is listed twice"}},
		{"guardrail malformed", func(s *State) { s.Entitlements[0].Guardrails = []string{"gr-abc"} }, []string{`guardrail "gr-abc" is not a guardrail ID`}},
		{"guardrail not a guardrail ARN", func(s *State) {
			s.Entitlements[0].Guardrails = []string{"arn:aws:bedrock:us-east-1:111111111111:foundation-model/abc"}
		}, []string{`guardrail "arn:aws:bedrock:us-east-1:111111111111:foundation-model/abc" is not a guardrail ID`}},
		{"guardrail twice", func(s *State) { s.Entitlements[0].Guardrails = []string{"abc", "abc"} }, []string{"guardrail abc is listed twice"}},

		// Credentials.
		{"credential account format", func(s *State) { s.Credentials[0].Account = "x" }, []string{`credentials[0] (GWTEST00000000000001): account "x" is not a 12-digit`}},
		{"credential account unknown", func(s *State) { s.Credentials[0].Account = "444444444444" }, []string{"credentials[0] (GWTEST00000000000001): account 444444444444 is not one of the accounts"}},
		{"credential kind", func(s *State) { s.Credentials[0].Kind = "oauth" }, []string{`kind "oauth" must be sigv4 or api_key`}},
		{"label too long", func(s *State) { s.Credentials[0].Label = strings.Repeat("l", 65) }, []string{"label must be at most 64 printable characters"}},
		{"label control char", func(s *State) { s.Credentials[0].Label = "a\tb" }, []string{"label must be at most 64 printable characters"}},
		{"access key format", func(s *State) { s.Credentials[0].AccessKeyID = "AKIAEXAMPLE000000001" }, []string{`access_key_id "AKIAEXAMPLE000000001" must be GW`}},
		{"secret missing", func(s *State) { s.Credentials[0].Secret = "" }, []string{"secret is missing"}},
		{"secret unresolved", func(s *State) { s.Credentials[0].Secret = ""; s.Credentials[0].SecretEnv = "APP_SECRET" }, []string{"secret_env APP_SECRET has not been resolved"}},
		{"secret too short", func(s *State) { s.Credentials[0].Secret = "short" }, []string{"secret must be 16 to 128 characters"}},
		{"secret too long", func(s *State) { s.Credentials[0].Secret = strings.Repeat("s", 129) }, []string{"secret must be 16 to 128 characters"}},
		{"secret with space", func(s *State) { s.Credentials[0].Secret = "0123456789 abcdef" }, []string{"secret must not contain spaces"}},
		{"sigv4 with key hash", func(s *State) { s.Credentials[0].KeySHA256 = strings.Repeat("0", 64) }, []string{"belong to api_key credentials"}},
		{"duplicate access key", func(s *State) {
			s.Credentials = append(s.Credentials, s.Credentials[0])
			s.Credentials[2].ID = "other"
		}, []string{"credentials[2] (other): duplicate access_key_id (also credentials[0])"}},
		{"key hash missing", func(s *State) { s.Credentials[1].KeySHA256 = "" }, []string{"key_sha256 is missing"}},
		{"key unresolved", func(s *State) { s.Credentials[1].KeySHA256 = ""; s.Credentials[1].KeyEnv = "K" }, []string{"key has not been resolved"}},
		{"key hash uppercase", func(s *State) { s.Credentials[1].KeySHA256 = strings.Repeat("AB", 32) }, []string{"key_sha256 must be 64 lowercase hex digits"}},
		{"key hash short", func(s *State) { s.Credentials[1].KeySHA256 = "abcd" }, []string{"key_sha256 must be 64 lowercase hex digits"}},
		{"api_key with secret", func(s *State) { s.Credentials[1].Secret = "0123456789abcdef" }, []string{"belong to sigv4 credentials"}},
		{"duplicate key hash", func(s *State) {
			s.Credentials = append(s.Credentials, s.Credentials[1])
			s.Credentials[2].ID = "other"
		}, []string{"credentials[2] (other): duplicate key_sha256 (also credentials[1])"}},
		{"duplicate id", func(s *State) { s.Credentials[0].ID = "same"; s.Credentials[1].ID = "same" }, []string{"credentials[1] (same): duplicate id (also credentials[0])"}},
		{"id format", func(s *State) { s.Credentials[1].ID = "has space" }, []string{`id "has space" must be`}},
		// Billing.
		{"billing mode", func(s *State) { s.Entitlements[0].Billing.Profiles = "per_account" },
			[]string{`entitlements[0] (whole-org): billing.profiles "per_account" must be per_team, per_entitlement or none`}},
		{"billing on an application profile", func(s *State) {
			s.Entitlements[0].Model = "arn:aws:bedrock:us-east-1:111111111111:application-inference-profile/abcdef123456"
			s.Entitlements[0].Billing.Profiles = ProfilesPerTeam
		}, []string{"entitlements[0] (whole-org): billing.profiles needs a model an application inference profile can copy"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := validState()
			tt.mutate(s)
			err := s.Validate()
			if err == nil {
				t.Fatal("Validate succeeded")
			}
			problems := strings.Split(err.Error(), "\n")
			for _, w := range tt.want {
				found := false
				for _, p := range problems {
					found = found || strings.Contains(p, w)
				}
				if !found {
					t.Errorf("no problem contains %q; got:\n%v", w, err)
				}
			}
			if len(problems) != len(tt.want) {
				t.Errorf("got %d problems, want %d:\n%v", len(problems), len(tt.want), err)
			}
		})
	}
}

func TestValidateReportsEverything(t *testing.T) {
	t.Parallel()
	s := validState()
	s.Organization.HubAccount = "99999999999x"
	s.Entitlements[0].Model = ""
	s.Entitlements[1].Shares = []Share{{Target: ouOther}}
	s.Credentials[1].Kind = "nope"
	err := s.Validate()
	var joined interface{ Unwrap() []error }
	if !errors.As(err, &joined) {
		t.Fatalf("Validate error %v does not join its problems", err)
	}
	if n := len(joined.Unwrap()); n != 4 {
		t.Errorf("got %d problems, want 4:\n%v", n, err)
	}
}
