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
// running code of this module (or naming one of also, e.g. a library whose
// goroutines the package must stop, like "github.com/redis/go-redis") to end,
// and fails the binary if any remain.
func Main(m *testing.M, also ...string) {
	code := m.Run()
	if code == 0 {
		if leaked := wait(10*time.Second, also); leaked != "" {
			fmt.Fprintf(os.Stderr, "leakcheck: goroutines left running after the tests:\n%s\n", leaked)
			code = 1
		}
	}
	os.Exit(code)
}

func wait(limit time.Duration, also []string) string {
	deadline := time.Now().Add(limit)
	for {
		leaked := ours(also)
		if leaked == "" || time.Now().After(deadline) {
			return leaked
		}
		time.Sleep(20 * time.Millisecond) // polling for goroutines to finish unwinding
	}
}

// ours returns the stacks of goroutines executing this module's non-test code
// or naming one of also.
func ours(also []string) string {
	buf := make([]byte, 4<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		match := strings.Contains(g, "bedrock-gateway/gateway/internal/")
		for _, a := range also {
			match = match || strings.Contains(g, a)
		}
		if !match {
			continue
		}
		if strings.Contains(g, "leakcheck.") || strings.Contains(g, "testing.(*M).Run") || strings.Contains(g, "testing.tRunner") {
			continue
		}
		out = append(out, g)
	}
	return strings.Join(out, "\n\n")
}
