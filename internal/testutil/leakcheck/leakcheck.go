// Package leakcheck fails a test binary that leaves the project's goroutines
// running: the bug class a streaming proxy produces (a copy loop or upstream
// reader that never ends). Call it from TestMain.
package leakcheck

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// Main runs the tests, then waits (up to 10 s, polling) for every goroutine
// running code of this module to end, and fails the binary if any remain.
func Main(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if leaked := wait(10 * time.Second); leaked != "" {
			fmt.Fprintf(os.Stderr, "leakcheck: goroutines left running after the tests:\n%s\n", leaked)
			code = 1
		}
	}
	os.Exit(code)
}

func wait(limit time.Duration) string {
	deadline := time.Now().Add(limit)
	for {
		leaked := ours()
		if leaked == "" || time.Now().After(deadline) {
			return leaked
		}
		time.Sleep(20 * time.Millisecond) // polling for goroutines to finish unwinding
	}
}

// ours returns the stacks of goroutines executing this module's non-test code.
func ours() string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if !strings.Contains(g, "bedrock-gateway/gateway/internal/") {
			continue
		}
		if strings.Contains(g, "leakcheck.") || strings.Contains(g, "testing.(*M).Run") || strings.Contains(g, "testing.tRunner") {
			continue
		}
		out = append(out, g)
	}
	return strings.Join(out, "\n\n")
}
