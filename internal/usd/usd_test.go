package usd

import (
	"encoding/json"
	"math"
	"testing"
)

func TestParseMicros(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want Micros
		ok   bool
	}{
		{"0", 0, true},
		{"12", 12_000_000, true},
		{"0.8", 800_000, true},
		{"0.000001", 1, true},
		{"1.000001", 1_000_001, true},
		{"-2.5", -2_500_000, true},
		{"007.10", 7_100_000, true},
		{"0.0000001", 0, false},
		{"1e3", 0, false},
		{".5", 0, false},
		{"5.", 0, false},
		{"+1", 0, false},
		{"", 0, false},
		{"-", 0, false},
		{"1.2.3", 0, false},
		{"99999999999999999999", 0, false},
		{" 1", 0, false},
	}
	for _, tt := range tests {
		got, err := ParseMicros(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseMicros(%q) = %d, %v; want %d ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestMicrosString(t *testing.T) {
	t.Parallel()
	for m, want := range map[Micros]string{
		0: "0.000000", 1: "0.000001", 1_800_945: "1.800945", -5: "-0.000005", -1_000_000: "-1.000000",
		math.MaxInt64: "9223372036854.775807", math.MinInt64: "-9223372036854.775808",
	} {
		if got := m.String(); got != want {
			t.Errorf("%d: %q, want %q", int64(m), got, want)
		}
		if m == math.MinInt64 {
			continue
		}
		b, _ := json.Marshal(m)
		var back Micros
		if err := json.Unmarshal(b, &back); err != nil || back != m {
			t.Errorf("JSON round trip of %d: %s -> %d, %v", int64(m), b, back, err)
		}
	}
}

func FuzzParseMicros(f *testing.F) {
	for _, s := range []string{"0", "0.8", "-1.000001", "1e3", "99999999999999.999999", ".", "-"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseMicros(s)
		if err != nil {
			return
		}
		back, err := ParseMicros(m.String())
		if err != nil || back != m {
			t.Fatalf("%q -> %d -> %q -> %d, %v", s, m, m.String(), back, err)
		}
	})
}
