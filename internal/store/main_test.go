package store

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestMain fails the run when goroutines of this package or of go-redis outlive
// the tests: Watch and Syncer must stop with their context, subscriptions must
// be closed.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if leaked := waitForLeaks(5 * time.Second); leaked != "" {
			fmt.Fprintf(os.Stderr, "goroutines leaked:\n%s\n", leaked)
			code = 1
		}
	}
	os.Exit(code)
}

// waitForLeaks polls until no suspicious goroutine is left or the deadline
// passes (go-redis needs a moment to notice a closed subscription).
func waitForLeaks(within time.Duration) string {
	deadline := time.Now().Add(within)
	for {
		leaked := suspiciousGoroutines()
		if leaked == "" || time.Now().After(deadline) {
			return leaked
		}
		time.Sleep(20 * time.Millisecond) // polling a condition with a deadline
	}
}

func suspiciousGoroutines() string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		if strings.Contains(g, "store.TestMain") || strings.Contains(g, "store.suspiciousGoroutines") {
			continue
		}
		if strings.Contains(g, "gateway/internal/store.") || strings.Contains(g, "github.com/redis/go-redis") {
			out = append(out, g)
		}
	}
	return strings.Join(out, "\n\n")
}
