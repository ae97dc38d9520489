package authz

import (
	"testing"

	"github.com/bedrock-gateway/gateway/internal/bedrock"
)

func TestAllowsOptions(t *testing.T) {
	t.Parallel()
	st := fixture()
	for i := range st.Entitlements {
		switch st.Entitlements[i].Name {
		case "nested":
			st.Entitlements[i].ServiceTiers = []string{"priority", "optimized"}
			st.Entitlements[i].Guardrails = []string{"abc123", "arn:aws:bedrock:us-east-1:" + acctHub + ":guardrail/hubarn1",
				"arn:aws:bedrock:us-east-1:999999999999:guardrail/other1"}
		case "direct":
			st.Entitlements[i].ServiceTiers = []string{"flex"}
		}
	}
	snap := build(t, st)
	nested, _ := snap.Entitlement("nested")
	direct, _ := snap.Entitlement("direct")
	plain, _ := snap.Entitlement("org-wide")
	hubARN := func(id string) string { return "arn:aws:bedrock:us-east-1:" + acctHub + ":guardrail/" + id }
	for _, tc := range []struct {
		name string
		e    *Entitlement
		o    bedrock.RequestOptions
		want bool
	}{
		{"nothing chosen", plain, bedrock.RequestOptions{}, true},
		{"default tier always", plain, bedrock.RequestOptions{ServiceTier: "default", Latency: "standard"}, true},
		{"priority unlisted", plain, bedrock.RequestOptions{ServiceTier: "priority"}, false},
		{"flex unlisted", plain, bedrock.RequestOptions{ServiceTier: "flex"}, false},
		{"reserved unlisted", nested, bedrock.RequestOptions{ServiceTier: "reserved"}, false},
		{"optimized unlisted", direct, bedrock.RequestOptions{Latency: "optimized"}, false},
		{"priority listed", nested, bedrock.RequestOptions{ServiceTier: "priority"}, true},
		{"optimized listed", nested, bedrock.RequestOptions{ServiceTier: "priority", Latency: "optimized"}, true},
		{"flex listed", direct, bedrock.RequestOptions{ServiceTier: "flex"}, true},
		{"any guardrail without a list", plain, bedrock.RequestOptions{Guardrails: []string{"abc123"}}, false},
		{"listed ID", nested, bedrock.RequestOptions{Guardrails: []string{"abc123"}}, true},
		{"listed ID by hub ARN", nested, bedrock.RequestOptions{Guardrails: []string{hubARN("abc123")}}, true},
		{"listed ID by another account's ARN", nested, bedrock.RequestOptions{Guardrails: []string{"arn:aws:bedrock:us-east-1:999999999999:guardrail/abc123"}}, false},
		{"listed hub ARN by ID", nested, bedrock.RequestOptions{Guardrails: []string{"hubarn1"}}, true},
		{"listed hub ARN by itself", nested, bedrock.RequestOptions{Guardrails: []string{hubARN("hubarn1")}}, true},
		{"listed hub ARN in another region", nested, bedrock.RequestOptions{Guardrails: []string{"arn:aws:bedrock:eu-west-1:" + acctHub + ":guardrail/hubarn1"}}, false},
		{"foreign ARN by itself", nested, bedrock.RequestOptions{Guardrails: []string{"arn:aws:bedrock:us-east-1:999999999999:guardrail/other1"}}, true},
		{"foreign ARN by bare ID", nested, bedrock.RequestOptions{Guardrails: []string{"other1"}}, false},
		{"unlisted", nested, bedrock.RequestOptions{Guardrails: []string{"zzz"}}, false},
		{"one of two unlisted", nested, bedrock.RequestOptions{Guardrails: []string{"abc123", "zzz"}}, false},
		{"malformed", nested, bedrock.RequestOptions{Guardrails: []string{"ABC123"}}, false},
	} {
		if got := tc.e.AllowsOptions(tc.o); got != tc.want {
			t.Errorf("%s: AllowsOptions(%+v) = %v, want %v", tc.name, tc.o, got, tc.want)
		}
	}
}
