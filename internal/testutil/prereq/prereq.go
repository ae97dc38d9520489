// Package prereq handles what a test needs from outside the Go toolchain
// (redis-server, Prometheus, node and npm, a package registry): without it
// the test is skipped with instructions, except under CI=true, where it
// fails. CI installs everything the suite needs (.ci/run), so there a
// missing prerequisite is a broken setup, not a reason to skip silently.
package prereq

import (
	"os"
	"os/exec"
	"testing"
)

// Unavailable skips the test with msg, or fails it under CI=true.
func Unavailable(tb testing.TB, msg string) {
	tb.Helper()
	if os.Getenv("CI") == "true" {
		tb.Fatal(msg)
	}
	tb.Skip(msg)
}

// Program returns the path of the named program on PATH; when there is none
// the test is Unavailable, its message saying how to install it.
func Program(tb testing.TB, name, install string) string {
	tb.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		Unavailable(tb, name+" not found on PATH; install it ("+install+") to run this test")
	}
	return path
}
