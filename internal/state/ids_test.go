package state

import (
	"strings"
	"testing"
)

func TestIDFormats(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		fn   func(string) bool
		good []string
		bad  []string
	}{
		{"IsOrgID", IsOrgID,
			[]string{"o-exampleorg1", "o-0123456789", "o-" + strings.Repeat("a", 32)},
			[]string{"", "o-", "o-short", "o-012345678", "o-" + strings.Repeat("a", 33), "o-ExampleOrg1", "x-exampleorg1", "o-example-org", "o_exampleorg1"}},
		{"IsRootID", IsRootID,
			[]string{"r-ab12", "r-" + strings.Repeat("z", 32)},
			[]string{"", "r-", "r-abc", "r-AB12", "r-ab12-", "r-" + strings.Repeat("z", 33), "ab12"}},
		{"IsOUID", IsOUID,
			[]string{"ou-ab12-dev00001", "ou-ab12-12345678", "ou-" + strings.Repeat("a", 32) + "-" + strings.Repeat("b", 32)},
			[]string{"", "ou-", "ou-ab12", "ou-abc-12345678", "ou-ab12-1234567", "ou-ab12-dev0000-1", "ou-AB12-dev00001", "ou-ab12-dev00001-", "ou--dev00001", "uo-ab12-dev00001",
				"ou-" + strings.Repeat("a", 33) + "-12345678", "ou-ab12-" + strings.Repeat("1", 33)}},
		{"IsAccountID", IsAccountID,
			[]string{"111111111111", "012345678901"},
			[]string{"", "11111111111", "1111111111111", "11111111111a", "-11111111111", "١١١١١١١١١١١١"}},
		{"IsEntitlementName", IsEntitlementName,
			[]string{"a", "0", "customer-support-llm", "a-b", strings.Repeat("a", 63)},
			[]string{"", "-a", "a-", "A", "a_b", "a.b", "a b", strings.Repeat("a", 64), "anthropic.claude-3-haiku-20240307-v1:0"}},
		{"IsAccessKeyID", IsAccessKeyID,
			[]string{"GWEXAMPLE00000000001", "GW" + strings.Repeat("Z", 18)},
			[]string{"", "GW", "AKIAEXAMPLE000000001", "GWexample00000000001", "GWEXAMPLE0000000001", "GWEXAMPLE000000000011", "GWEXAMPLE0000000000-"}},
		{"isKeySHA256", isKeySHA256,
			[]string{strings.Repeat("0", 64), strings.Repeat("af", 32)},
			[]string{"", strings.Repeat("0", 63), strings.Repeat("0", 65), strings.Repeat("AF", 32), strings.Repeat("g", 64)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			for _, s := range tt.good {
				if !tt.fn(s) {
					t.Errorf("%s(%q) = false, want true", tt.name, s)
				}
			}
			for _, s := range tt.bad {
				if tt.fn(s) {
					t.Errorf("%s(%q) = true, want false", tt.name, s)
				}
			}
		})
	}
}
