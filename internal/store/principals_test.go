package store

import (
	"slices"
	"testing"

	"github.com/bedrock-gateway/gateway/internal/state"
	"github.com/bedrock-gateway/gateway/internal/testutil/redistest"
)

func TestDeniedPrincipalsRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := newStore(t, redistest.Start(t).Client(t), Options{Now: (&clock{}).Now})
	const (
		a = "arn:aws:iam::222222222222:role/compromised-*"
		b = "arn:aws:iam::333333333333:user/mallory"
	)
	deny := func(list ...string) func(st *state.State) error {
		return func(st *state.State) error { st.DeniedPrincipals = list; return nil }
	}
	steps := []struct {
		name        string
		list        []string
		wantTargets []string // audit targets of the step
	}{
		{"first entry initializes the store", []string{b, a}, []string{"denied_principal/" + a, "denied_principal/" + b}},
		{"one removed", []string{a}, []string{"denied_principal/" + b}},
		{"all removed", nil, []string{"denied_principal/" + a}},
	}
	for _, step := range steps {
		v0, err := s.Version(ctx)
		if err != nil {
			t.Fatal(err)
		}
		v, err := s.Update(ctx, "test", "principals.deny", deny(step.list...))
		if err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		if v != v0+1 {
			t.Fatalf("%s: version %d, want %d", step.name, v, v0+1)
		}
		st, _, err := s.Load(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := slices.Sorted(slices.Values(step.list))
		if !slices.Equal(st.DeniedPrincipals, want) {
			t.Fatalf("%s: loaded %q, want %q", step.name, st.DeniedPrincipals, want)
		}
		entries, err := s.Audit(ctx, AuditQuery{})
		if err != nil {
			t.Fatal(err)
		}
		var targets []string
		for _, e := range entries {
			if e.Target != "organization" && e.Action == "principals.deny" && e.ID > "" {
				targets = append(targets, e.Target)
			}
		}
		// Newest first: this step's entries lead.
		got := targets[:len(step.wantTargets)]
		slices.Sort(got)
		if !slices.Equal(got, step.wantTargets) {
			t.Fatalf("%s: audit targets %q, want %q", step.name, got, step.wantTargets)
		}
	}
	// The same list again changes nothing.
	v0, _ := s.Version(ctx)
	if v, err := s.Update(ctx, "test", "principals.deny", deny()); err != nil || v != v0 {
		t.Fatalf("no-op update: version %d (%v), want %d", v, err, v0)
	}
}
