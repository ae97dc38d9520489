package wait

import (
	"fmt"
	"runtime"
	"testing"
	"time"
)

// recorder is a testing.TB whose Fatalf records the message and ends the
// goroutine, as the real one does.
type recorder struct {
	testing.TB
	msg string
}

func (r *recorder) Helper() {}

func (r *recorder) Fatalf(format string, args ...any) {
	r.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// run calls f with a recorder in its own goroutine (Fatalf ends it) and
// returns the failure message, "" when f returned.
func run(f func(testing.TB)) string {
	r := &recorder{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(r)
	}()
	<-done
	return r.msg
}

func TestFor(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		trueAt  int // the poll on which cond first holds; 0: never
		within  time.Duration
		wantMsg string
	}{
		{name: "holds at once", trueAt: 1, within: time.Minute},
		{name: "holds later", trueAt: 4, within: time.Minute},
		{name: "never holds", within: time.Millisecond, wantMsg: "timed out after 1ms waiting for the answer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			polls := 0
			msg := run(func(tb testing.TB) {
				For(tb, "the answer", tt.within, func() bool {
					polls++
					return polls == tt.trueAt
				})
			})
			if msg != tt.wantMsg {
				t.Fatalf("failure %q, want %q", msg, tt.wantMsg)
			}
			if tt.trueAt > 0 && polls != tt.trueAt {
				t.Fatalf("polled %d times, want %d", polls, tt.trueAt)
			}
		})
	}
}

func TestUntil(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		nilAt   int // the poll on which cond first returns nil; 0: never
		within  time.Duration
		wantMsg func(polls int) string
	}{
		{name: "nil ends the wait", nilAt: 3, within: time.Minute, wantMsg: func(int) string { return "" }},
		{name: "the last error is reported", within: time.Millisecond, wantMsg: func(polls int) string {
			return fmt.Sprintf("timed out after 1ms waiting for a subscriber: poll %d: no subscriber", polls)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			polls := 0
			msg := run(func(tb testing.TB) {
				Until(tb, "a subscriber", tt.within, func() error {
					polls++
					if polls == tt.nilAt {
						return nil
					}
					return fmt.Errorf("poll %d: no subscriber", polls)
				})
			})
			if want := tt.wantMsg(polls); msg != want {
				t.Fatalf("failure %q, want %q", msg, want)
			}
		})
	}
}
