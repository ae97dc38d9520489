package suggest

import "testing"

func TestClosest(t *testing.T) {
	t.Parallel()
	fields := []string{"entitlements", "organization", "credentials", "revoked"}
	flags := []string{"output", "admin-url", "file", "prune", "dry-run"}
	for _, tc := range []struct {
		word       string
		candidates []string
		want       string
	}{
		{"entitlments", fields, "entitlements"},
		{"organisation", fields, "organization"},
		{"Credentials", fields, "credentials"},
		{"modle", []string{"model", "region", "scope"}, "model"},
		{"ouput", flags, "output"},
		{"out", flags, "output"}, // a prefix
		{"admin", flags, "admin-url"},
		{"x", flags, ""},
		{"zzzzzz", fields, ""},
		{"", flags, ""},
	} {
		if got := Closest(tc.word, tc.candidates); got != tc.want {
			t.Errorf("Closest(%q) = %q, want %q", tc.word, got, tc.want)
		}
	}
}

func TestDistance(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		a, b string
		want int
	}{{"", "", 0}, {"a", "", 1}, {"kitten", "sitting", 3}, {"modle", "model", 2}, {"same", "same", 0}} {
		if got := Distance(tc.a, tc.b); got != tc.want {
			t.Errorf("Distance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}

func FuzzClosest(f *testing.F) {
	f.Add("ouput", "output")
	f.Fuzz(func(t *testing.T, word, candidate string) {
		if got := Closest(word, []string{candidate}); got != "" && got != candidate {
			t.Fatalf("Closest returned %q, not a candidate", got)
		}
	})
}
