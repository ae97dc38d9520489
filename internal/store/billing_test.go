package store

import (
	"errors"
	"slices"
	"testing"

	"github.com/bedrock-gateway/gateway/internal/state"
	"github.com/bedrock-gateway/gateway/internal/testutil/redistest"
)

func TestReplaceBillingProfiles(t *testing.T) {
	t.Parallel()
	s, err := New(Options{Client: redistest.Start(t).Client(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	dev := state.BillingProfile{Entitlement: "support", Team: "development", ARN: "arn:aws:bedrock:us-east-1:111111111111:application-inference-profile/aaaaaaaaaaaa"}
	ds := state.BillingProfile{Entitlement: "support", Team: "data science", ARN: "arn:aws:bedrock:us-east-1:111111111111:application-inference-profile/bbbbbbbbbbbb"}
	whole := state.BillingProfile{Entitlement: "marketing", ARN: "arn:aws:bedrock:us-east-1:111111111111:application-inference-profile/cccccccccccc"}

	steps := []struct {
		name    string
		set     []state.BillingProfile
		bumps   bool
		audited int
	}{
		{"create", []state.BillingProfile{dev, ds}, true, 2},
		{"same again", []state.BillingProfile{ds, dev}, false, 0},
		{"add one, drop one", []state.BillingProfile{dev, whole}, true, 2},
		{"empty", nil, true, 2},
	}
	for _, st := range steps {
		before, _ := s.Version(ctx)
		audit, _ := s.Audit(ctx, AuditQuery{Limit: 1000})
		v, err := s.ReplaceBillingProfiles(ctx, "billing-sync", st.set)
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if bumped := v == before+1; bumped != st.bumps {
			t.Errorf("%s: version %d -> %d", st.name, before, v)
		}
		after, _ := s.Audit(ctx, AuditQuery{Limit: 1000})
		if n := len(after) - len(audit); n != st.audited {
			t.Errorf("%s: %d audit entries, want %d", st.name, n, st.audited)
		}
		if n := len(after) - len(audit); n > 0 && (after[0].Action != ActionBillingProfiles || after[0].Actor != "billing-sync") {
			t.Errorf("%s: audit %+v", st.name, after[0])
		}
		got, err := s.BillingProfiles(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := slices.Clone(st.set)
		state.SortBillingProfiles(want)
		if !slices.Equal(got, want) && (len(got) != 0 || len(want) != 0) {
			t.Errorf("%s: got %+v, want %+v", st.name, got, want)
		}
	}
	for _, bad := range [][]state.BillingProfile{{{Entitlement: "x"}}, {{ARN: "a"}}, {dev, dev}} {
		if _, err := s.ReplaceBillingProfiles(ctx, "t", bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("%+v: %v", bad, err)
		}
	}
}
