package prereq

import (
	"fmt"
	"runtime"
	"testing"
)

// recorder is a testing.TB that records how the test ended; Fatal and Skip
// end the goroutine, as the real ones do.
type recorder struct {
	testing.TB
	failed, skipped string
}

func (r *recorder) Helper() {}

func (r *recorder) Fatal(args ...any) {
	r.failed = fmt.Sprint(args...)
	runtime.Goexit()
}

func (r *recorder) Skip(args ...any) {
	r.skipped = fmt.Sprint(args...)
	runtime.Goexit()
}

func run(f func(testing.TB)) *recorder {
	r := &recorder{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(r)
	}()
	<-done
	return r
}

// Not parallel: the cases set CI.
func TestProgram(t *testing.T) {
	const missing = "no-such-program-for-prereq-test"
	const msg = missing + " not found on PATH; install it (apt-get install it) to run this test"
	tests := []struct {
		name, ci, program  string
		wantFail, wantSkip string
		wantPath           bool
	}{
		{name: "present", ci: "true", program: "go", wantPath: true},
		{name: "missing outside CI", ci: "", program: missing, wantSkip: msg},
		{name: "missing under CI", ci: "true", program: missing, wantFail: msg},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("CI", tt.ci)
			var path string
			r := run(func(tb testing.TB) { path = Program(tb, tt.program, "apt-get install it") })
			if r.failed != tt.wantFail || r.skipped != tt.wantSkip || (path != "") != tt.wantPath {
				t.Fatalf("failed %q skipped %q path %q; want failed %q skipped %q, a path: %v",
					r.failed, r.skipped, path, tt.wantFail, tt.wantSkip, tt.wantPath)
			}
		})
	}
}
