// Package wait polls a condition in tests until it holds or a deadline
// passes. The deadline is a guard against a hang, never a performance bound:
// pick it generously, a passing test never reaches it.
package wait

import (
	"testing"
	"time"
)

// interval is how often a condition is polled: short enough that a test
// waits little past the moment the condition holds, long enough not to spin.
const interval = 5 * time.Millisecond

// For polls cond until it returns true, or fails the test once within has
// passed, saying what it waited for.
func For(t testing.TB, what string, within time.Duration, cond func() bool) {
	t.Helper()
	poll(t, what, within, func() (bool, error) { return cond(), nil })
}

// Until polls cond until it returns nil, or fails the test once within has
// passed, saying what it waited for and the last error cond returned (what
// it last saw).
func Until(t testing.TB, what string, within time.Duration, cond func() error) {
	t.Helper()
	poll(t, what, within, func() (bool, error) {
		err := cond()
		return err == nil, err
	})
}

func poll(t testing.TB, what string, within time.Duration, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ok, err := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			if err != nil {
				t.Fatalf("timed out after %v waiting for %s: %v", within, what, err)
			}
			t.Fatalf("timed out after %v waiting for %s", within, what)
			return // a testing.TB whose Fatalf returns
		}
		time.Sleep(interval) // polling a condition with a deadline
	}
}
