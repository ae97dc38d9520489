package store

import (
	"testing"

	"github.com/bedrock-gateway/gateway/internal/state"
	"github.com/bedrock-gateway/gateway/internal/testutil/redistest"
)

// BenchmarkLoad10k measures a replica's full reload of a state with 10,000
// entitlements (one MULTI/EXEC plus decoding).
func BenchmarkLoad10k(b *testing.B) {
	c := redistest.Start(b).Client(b)
	s := newStore(b, c, Options{})
	if _, err := s.Replace(b.Context(), "bench", sampleState(10000)); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		st, _, err := s.Load(b.Context())
		if err != nil {
			b.Fatal(err)
		}
		if len(st.Entitlements) != 10000 {
			b.Fatalf("%d entitlements", len(st.Entitlements))
		}
	}
}

// BenchmarkUpdateOneOf10k measures changing one entitlement among 10,000: it
// reads everything but writes one hash field.
func BenchmarkUpdateOneOf10k(b *testing.B) {
	c := redistest.Start(b).Client(b)
	s := newStore(b, c, Options{})
	if _, err := s.Replace(b.Context(), "bench", sampleState(10000)); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	var n int64
	for b.Loop() {
		n++
		if _, err := s.Update(b.Context(), "bench", "edit", func(st *state.State) error {
			st.Entitlements[42].Limits.MonthlyTokens = n
			return nil
		}); err != nil {
			b.Fatal(err)
		}
	}
}
