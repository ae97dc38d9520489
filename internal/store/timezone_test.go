package store

import (
	"errors"
	"strings"
	"testing"

	"github.com/bedrock-gateway/gateway/internal/testutil/redistest"
)

// The first replica records its zone; the others must match it unless they
// change it explicitly; another prefix (another store) has its own.
func TestCheckTimeZone(t *testing.T) {
	t.Parallel()
	c := redistest.Start(t).Client(t)
	ctx := t.Context()
	s := newStore(t, c, Options{})
	steps := []struct {
		zone     string
		change   bool
		previous string
		mismatch bool
	}{
		{"Europe/Paris", false, "", false}, // first start records it
		{"Europe/Paris", false, "Europe/Paris", false},
		{"UTC", false, "Europe/Paris", true}, // refused, nothing changed
		{"Europe/Paris", false, "Europe/Paris", false},
		{"America/New_York", true, "Europe/Paris", false}, // the explicit change
		{"Europe/Paris", false, "America/New_York", true},
		{"America/New_York", false, "America/New_York", false},
	}
	for i, st := range steps {
		prev, err := s.CheckTimeZone(ctx, st.zone, st.change)
		var mm *TimeZoneMismatchError
		if prev != st.previous || errors.As(err, &mm) != st.mismatch || (!st.mismatch && err != nil) {
			t.Fatalf("step %d %+v: previous %q, err %v", i, st, prev, err)
		}
		if st.mismatch && (mm.Stored != st.previous || mm.Configured != st.zone ||
			!strings.Contains(err.Error(), "--time-zone-change")) {
			t.Errorf("step %d: %v", i, err)
		}
	}
	other := newStore(t, c, Options{Prefix: "other"})
	if prev, err := other.CheckTimeZone(ctx, "UTC", false); prev != "" || err != nil {
		t.Errorf("another store: %q %v", prev, err)
	}
}
