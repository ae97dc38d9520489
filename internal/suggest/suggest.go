// Package suggest owns "did you mean": the nearest of a set of names to a
// misspelt one, for unknown flags, subcommands and state-file keys.
package suggest

import (
	"slices"
	"strings"
)

// Closest returns the candidate nearest to word when it is near enough to be
// a likely misspelling (or word is a prefix of it), else "". Case is ignored;
// ties go to the candidate that sorts first, so the answer is stable.
func Closest(word string, candidates []string) string {
	w := strings.ToLower(word)
	sorted := slices.Clone(candidates)
	slices.Sort(sorted)
	best, bestDist := "", 0
	for _, c := range sorted {
		d := Distance(w, strings.ToLower(c))
		if len(w) >= 3 && strings.HasPrefix(strings.ToLower(c), w) {
			d = min(d, 1)
		}
		if d <= allowed(len(w), len(c)) && (best == "" || d < bestDist) {
			best, bestDist = c, d
		}
	}
	return best
}

// allowed is how many edits still read as a typo: one for very short names,
// two for most, a third of the length for long ones.
func allowed(a, b int) int {
	n := min(a, b)
	if n <= 2 {
		return 1
	}
	return max(2, n/3)
}

// Distance is the Levenshtein distance of a and b.
func Distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
