package promtest

import "testing"

func TestGrafanaVariableDetection(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		expr string
		want bool
	}{
		{`sum(rate(x{entitlement=~"$entitlement"}[$__rate_interval]))`, true},
		{`sum(x{team=~"${team}"})`, true},
		{`sum(x{team=~"[[team]]"})`, true},
		{`label_replace(x, "entitlement", "none", "entitlement", "^$")`, false},
		{Substitute(`sum(rate(x{entitlement=~"$entitlement",team=~"$team"}[$__rate_interval])) / $__range`), false},
	} {
		if got := grafanaVariable.MatchString(tc.expr); got != tc.want {
			t.Errorf("%s: variable found %v, want %v", tc.expr, got, tc.want)
		}
	}
}
