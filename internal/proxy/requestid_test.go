package proxy

import (
	"regexp"
	"testing"
)

func TestRequestIDsAreRandomUUIDs(t *testing.T) {
	t.Parallel()
	uuid := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	var a, b requestIDs
	a.init()
	b.init()
	const n = 1000
	seen := make(map[string]bool, 2*n)
	// The first 16 hex digits (60 random bits): a counter or a per-process
	// prefix would repeat them and so reveal how many requests were served.
	prefixes := make(map[string]bool, 2*n)
	for range n {
		for _, g := range []*requestIDs{&a, &b} {
			id := g.next()
			if !uuid.MatchString(id) {
				t.Fatalf("request ID %q is not a version 4 UUID", id)
			}
			if seen[id] {
				t.Fatalf("request ID %q repeated", id)
			}
			seen[id] = true
			prefixes[id[:18]] = true
		}
	}
	if len(prefixes) != 2*n {
		t.Fatalf("%d distinct leading halves in %d IDs: not random", len(prefixes), 2*n)
	}
}
