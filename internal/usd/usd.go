// Package usd holds exact amounts of US dollars. It is a leaf so that both
// the price table (metering) and the reports and their readers (report, cli)
// can share the amount type without depending on each other.
package usd

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Micros is an amount of US dollars in millionths of a dollar. It prints,
// in JSON and CSV, as a decimal with exactly six fractional digits.
type Micros int64

// String formats m as a decimal with six fractional digits, e.g. "12.000345".
func (m Micros) String() string {
	sign := ""
	u := uint64(m)
	if m < 0 {
		sign, u = "-", uint64(-m)
	}
	return fmt.Sprintf("%s%d.%06d", sign, u/1_000_000, u%1_000_000)
}

// MarshalJSON writes m as a JSON number with six fractional digits.
func (m Micros) MarshalJSON() ([]byte, error) { return []byte(m.String()), nil }

// UnmarshalJSON reads a JSON number (or string) with at most six fractional
// digits exactly.
func (m *Micros) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	v, err := ParseMicros(s)
	if err != nil {
		return err
	}
	*m = v
	return nil
}

// ParseMicros parses a plain decimal ("12", "0.8", "-1.000001") with at most
// six fractional digits. Exponents, signs other than a leading '-', and
// anything else are refused.
func ParseMicros(s string) (Micros, error) {
	orig := s
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	whole, frac, hasDot := strings.Cut(s, ".")
	if whole == "" || (hasDot && frac == "") || len(frac) > 6 || !digits(whole) || !digits(frac) {
		return 0, fmt.Errorf("amount %q: want a decimal with at most 6 fractional digits", orig)
	}
	w, err := strconv.ParseInt(whole, 10, 64)
	f, _ := strconv.ParseInt((frac + "000000")[:6], 10, 64)
	if err != nil || w > (math.MaxInt64-f)/1_000_000 {
		return 0, fmt.Errorf("amount %q is too large", orig)
	}
	v := Micros(w*1_000_000 + f)
	if neg {
		v = -v
	}
	return v, nil
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
