package state

import (
	"strings"
	"testing"
)

func TestBillingParsesAndExports(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, doc, want string
	}{
		{"per team", "entitlements:\n  - name: e\n    model: amazon.nova-lite-v1:0\n    billing: {profiles: per_team}\n", ProfilesPerTeam},
		{"per entitlement", "entitlements:\n  - name: e\n    model: amazon.nova-lite-v1:0\n    billing:\n      profiles: per_entitlement\n", ProfilesPerEntitlement},
		{"absent", "entitlements:\n  - name: e\n    model: amazon.nova-lite-v1:0\n", ProfilesNone},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			st, err := Parse([]byte(tc.doc))
			if err != nil {
				t.Fatal(err)
			}
			if got := st.Entitlements[0].Billing.ProfileMode(); got != tc.want {
				t.Fatalf("mode %q, want %q", got, tc.want)
			}
			out, err := Marshal(st)
			if err != nil {
				t.Fatal(err)
			}
			if has := strings.Contains(string(out), "billing:"); has != (tc.want != ProfilesNone) {
				t.Errorf("export:\n%s", out)
			}
		})
	}
	if _, err := Parse([]byte("entitlements:\n  - name: e\n    model: m\n    billing: {profile: per_team}\n")); err == nil || !strings.Contains(err.Error(), `did you mean "profiles"`) {
		t.Errorf("misspelt key: %v", err)
	}
}
