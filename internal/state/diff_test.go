package state

import (
	"reflect"
	"strings"
	"testing"
)

func TestDiff(t *testing.T) {
	t.Parallel()
	base := func() *State { s := validState(); s.Normalize(); return s }
	tests := []struct {
		name   string
		mutate func(*State)
		want   []Change
	}{
		{"identical", func(*State) {}, nil},
		{"reordered lists", func(s *State) {
			u := s.Organization.Units
			u[0], u[3] = u[3], u[0]
			e := s.Entitlements
			e[0], e[1] = e[1], e[0]
			sh := s.Entitlements[0].Shares
			sh[0], sh[1] = sh[1], sh[0]
		}, nil},
		{"timestamps are not changes", func(s *State) { s.Entitlements[0].UpdatedAt = s.Entitlements[0].UpdatedAt.AddDate(1, 0, 0) }, nil},
		{"organization", func(s *State) { s.Organization.HubAccount = acctOth; s.Organization.Root = "r-new1" },
			[]Change{{KindOrganization, OpUpdate, testOrg, "root: r-root -> r-new1; hub_account: 111111111111 -> 333333333333"}}},
		{"unit create, update, delete", func(s *State) {
			s.Organization.Units[0].Name = "Top Level"
			s.Organization.Units[3].ID = "ou-root-new00001"
		}, []Change{
			{KindUnit, OpCreate, "ou-root-new00001", `name "Other", parent r-root`},
			{KindUnit, OpDelete, ouOther, `name "Other", parent r-root`},
			{KindUnit, OpUpdate, ouTop, "name: Top -> Top Level"},
		}},
		{"account moved", func(s *State) { s.Organization.Accounts[2].Unit = ouLeaf; s.Organization.Accounts[2].Team = "t" },
			[]Change{{KindAccount, OpUpdate, acctOth, "unit: " + ouOther + " -> " + ouLeaf + `; team: "" -> t`}}},
		{"account created", func(s *State) {
			s.Organization.Accounts = append(s.Organization.Accounts, Account{ID: "444444444444", Name: "new", Unit: ouTop, Team: "x"})
		}, []Change{{KindAccount, OpCreate, "444444444444", `name "new", unit ` + ouTop + `, team "x"`}}},
		{"entitlement fields", func(s *State) {
			e := &s.Entitlements[1]
			e.Model = "m2"
			e.Limits.MonthlyTokens = 2000
			e.Limits.AlertThresholds = []int{50}
			e.State = EntitlementActive
			e.Operations = nil
		}, []Change{{KindEntitlement, OpUpdate, "top-only",
			"model: arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-lite-v1:0 -> m2; " +
				"limits.monthly_tokens: 1000 -> 2000; limits.alert_thresholds: [10, 90] -> [50]; " +
				"operations: [Converse, ConverseStream] -> []; state: suspended -> active"}}},
		{"entitlement deleted with shares", func(s *State) { s.Entitlements = s.Entitlements[:1] }, []Change{
			{KindEntitlement, OpDelete, "top-only", "model arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-lite-v1:0, suspended"},
			{KindShare, OpDelete, "top-only/" + acctLeaf, "monthly_tokens 10"},
			{KindShare, OpDelete, "top-only/" + ouMid, ""},
		}},
		{"entitlement created", func(s *State) {
			s.Entitlements = append(s.Entitlements, Entitlement{Name: "new", Model: "m", State: EntitlementActive, Shares: []Share{{Target: acctOth}}})
		}, []Change{
			{KindEntitlement, OpCreate, "new", "model m"},
			{KindShare, OpCreate, "new/" + acctOth, ""},
		}},
		{"shares", func(s *State) {
			s.Entitlements[1].Shares[1].MonthlyTokens = 0
			s.Entitlements[1].Shares[0].Target = ouLeaf
		}, []Change{
			{KindShare, OpUpdate, "top-only/" + acctLeaf, "monthly_tokens: 10 -> unlimited"},
			{KindShare, OpCreate, "top-only/" + ouLeaf, ""},
			{KindShare, OpDelete, "top-only/" + ouMid, ""},
		}},
		{"credentials", func(s *State) {
			s.Credentials[0].Secret = "another-secret-0123"
			s.Credentials[0].Label = "app2"
			s.Credentials = append(s.Credentials[:1], Credential{ID: "c2", Account: acctHub, Kind: KindAPIKey, KeySHA256: sha("x")})
		}, []Change{
			{KindCredential, OpUpdate, "GWTEST00000000000001", "label: app -> app2; secret changed"},
			{KindCredential, OpCreate, "c2", "api_key for account 111111111111"},
			{KindCredential, OpDelete, "key-abababababababab", "api_key for account 333333333333 (notebook)"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			old, new := base(), base()
			tt.mutate(new)
			got := Diff(old, new)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Diff =\n%s\nwant\n%s", changes(got), changes(tt.want))
			}
			for _, c := range got {
				if strings.Contains(c.Detail, "another-secret") || strings.Contains(c.Detail, "0123456789abcdef") {
					t.Errorf("change %v leaks a secret", c)
				}
			}
		})
	}
}

func TestDiffFromAndToEmpty(t *testing.T) {
	t.Parallel()
	s := validState()
	s.Normalize()
	created := Diff(nil, s)
	deleted := Diff(s, &State{})
	if len(created) != len(deleted) {
		t.Fatalf("%d creates but %d deletes", len(created), len(deleted))
	}
	// 1 organization, 4 units, 3 accounts, 2 entitlements, 3 shares, 2 credentials.
	if len(created) != 15 {
		t.Errorf("got %d changes:\n%s", len(created), changes(created))
	}
	for i := range created {
		if created[i].Op != OpCreate || deleted[i].Op != OpDelete || created[i].ID != deleted[i].ID {
			t.Errorf("change %d: %v vs %v", i, created[i], deleted[i])
		}
	}
	if created[0].String() != "create organization "+testOrg+`: id: "" -> `+testOrg+"; root: \"\" -> r-root; hub_account: \"\" -> 111111111111" {
		t.Errorf("organization create = %q", created[0].String())
	}
	if !reflect.DeepEqual(Diff(s, s), []Change(nil)) {
		t.Error("a state differs from itself")
	}
}

func changes(cs []Change) string {
	var b strings.Builder
	for _, c := range cs {
		b.WriteString("  " + c.String() + "\n")
	}
	return b.String()
}
