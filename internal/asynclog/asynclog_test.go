package asynclog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/bedrock-gateway/gateway/internal/testutil/leakcheck"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

// sink records what reaches it, batch by batch; gate, when set, holds every
// Write until a value is received from it.
type sink struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	batches int
	gate    chan struct{}
	entered chan struct{} // receives once per Write entered, when set
	err     error
}

func (s *sink) Write(p []byte) (int, error) {
	if s.entered != nil {
		s.entered <- struct{}{}
	}
	if s.gate != nil {
		<-s.gate
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return 0, s.err
	}
	s.batches++
	return s.buf.Write(p)
}

func (s *sink) lines() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Split(strings.TrimSuffix(s.buf.String(), "\n"), "\n")
}

func TestOrderAndNoLostLines(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name             string
		writers, perEach int
	}{
		{"one writer", 1, 5000},
		{"many writers", 16, 500},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out := &sink{}
			w := New(Options{Out: out, MaxBytes: 64 << 20})
			var wg sync.WaitGroup
			for g := range tc.writers {
				wg.Go(func() {
					for i := range tc.perEach {
						fmt.Fprintf(w, "%d %d\n", g, i)
					}
				})
			}
			wg.Wait()
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			got := out.lines()
			if len(got) != tc.writers*tc.perEach {
				t.Fatalf("%d lines written, want %d", len(got), tc.writers*tc.perEach)
			}
			// Every writer's lines arrive in the order it wrote them.
			next := make([]int, tc.writers)
			for _, l := range got {
				f := strings.Fields(l)
				g, _ := strconv.Atoi(f[0])
				i, _ := strconv.Atoi(f[1])
				if i != next[g] {
					t.Fatalf("writer %d: line %d after line %d", g, i, next[g]-1)
				}
				next[g]++
			}
			if w.Dropped() != 0 {
				t.Errorf("dropped %d lines", w.Dropped())
			}
		})
	}
}

// TestFullBufferDropsWithoutBlocking holds the sink mid-write: writers must
// keep returning at once, lines beyond the bound are dropped and counted,
// and what was buffered is written once the sink moves again.
func TestFullBufferDropsWithoutBlocking(t *testing.T) {
	t.Parallel()
	out := &sink{gate: make(chan struct{}), entered: make(chan struct{}, 16)}
	line := []byte("0123456789abcdef\n") // 17 bytes
	w := New(Options{Out: out, MaxBytes: 10 * len(line)})

	// The first line is taken by the writer goroutine, which then blocks in the sink.
	if _, err := w.Write(line); err != nil {
		t.Fatal(err)
	}
	<-out.entered
	// Ten more fit in the buffer; the next 90 do not. None of these calls
	// may block, which the test shows by finishing while the sink is stuck.
	for i := range 100 {
		n, err := w.Write(line)
		if n != len(line) || err != nil {
			t.Fatalf("write %d: %d, %v", i, n, err)
		}
	}
	if got := w.Dropped(); got != 90 {
		t.Errorf("dropped %d lines, want 90", got)
	}
	close(out.gate) // let the sink go
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got := len(out.lines()); got != 11 {
		t.Errorf("%d lines written, want 11 (1 in flight and 10 buffered)", got)
	}
}

// TestBatches shows lines logged while the sink is busy go out together.
func TestBatches(t *testing.T) {
	t.Parallel()
	out := &sink{gate: make(chan struct{}), entered: make(chan struct{}, 16)}
	w := New(Options{Out: out})
	fmt.Fprintln(w, "first")
	<-out.entered
	for i := range 50 {
		fmt.Fprintln(w, "queued", i)
	}
	out.gate <- struct{}{} // the first batch completes
	<-out.entered          // the second begins: all 50 queued lines
	close(out.gate)
	w.Flush()
	if out.batches != 2 {
		t.Errorf("%d batches, want 2", out.batches)
	}
	if got := len(out.lines()); got != 51 {
		t.Errorf("%d lines, want 51", got)
	}
	_ = w.Close()
}

func TestFlushAndWriteAfterClose(t *testing.T) {
	t.Parallel()
	out := &sink{}
	w := New(Options{Out: out})
	fmt.Fprintln(w, "one")
	w.Flush()
	if got := out.lines(); len(got) != 1 || got[0] != "one" {
		t.Fatalf("after Flush: %q", got)
	}
	fmt.Fprintln(w, "two")
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(w, "three") // after Close: written directly
	w.Flush()                // no-op once closed
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(out.lines(), ","); got != "one,two,three" {
		t.Errorf("got %q", got)
	}
}

func TestSinkErrorCountsLines(t *testing.T) {
	t.Parallel()
	out := &sink{err: errors.New("broken pipe")}
	w := New(Options{Out: out})
	fmt.Fprint(w, "a\nb\n")
	fmt.Fprint(w, "c") // a partial line counts as one
	w.Flush()
	_ = w.Close()
	if got := w.Dropped(); got != 3 {
		t.Errorf("dropped %d, want 3", got)
	}
}

// TestSlogLines runs slog's JSON handler over the writer, as the gateway does.
func TestSlogLines(t *testing.T) {
	t.Parallel()
	out := &sink{}
	w := New(Options{Out: out})
	log := slog.New(slog.NewJSONHandler(w, nil))
	for i := range 100 {
		log.LogAttrs(context.Background(), slog.LevelInfo, "request", slog.Int("n", i))
	}
	_ = w.Close()
	got := out.lines()
	if len(got) != 100 {
		t.Fatalf("%d lines", len(got))
	}
	for i, l := range got {
		if !strings.Contains(l, fmt.Sprintf(`"n":%d}`, i)) {
			t.Fatalf("line %d: %s", i, l)
		}
	}
}

// BenchmarkAccessLogLine is one access-log-sized JSON line through slog to a
// file: written synchronously (one write(2) per line, as before) and
// through the asynchronous writer.
func BenchmarkAccessLogLine(b *testing.B) {
	f, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	for _, bc := range []struct {
		name string
		out  func(io.Writer) (io.Writer, func())
	}{
		{"sync", func(f io.Writer) (io.Writer, func()) { return f, func() {} }},
		{"async", func(f io.Writer) (io.Writer, func()) {
			w := New(Options{Out: f})
			return w, func() { _ = w.Close() }
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			cw := &countingWriter{w: f}
			out, done := bc.out(cw)
			log := slog.New(slog.NewJSONHandler(out, nil))
			ctx := context.Background()
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					log.LogAttrs(ctx, slog.LevelInfo, "request",
						slog.String("request_id", "0b5c3f4e-9a51-4c7b-8d3e-2f1a6b7c8d9e"),
						slog.String("client", "10.0.0.1:53412"), slog.String("operation", "Converse"),
						slog.String("account", "222222222222"), slog.String("team", "development"),
						slog.String("credential", "notebook"), slog.String("entitlement", "customer-support-llm"),
						slog.String("model", "anthropic.claude-3-5-haiku-20241022-v1:0"),
						slog.Int("status", 200), slog.Int64("input_tokens", 12), slog.Int64("output_tokens", 16),
						slog.String("quota", "settled"))
				}
			})
			done()
			b.ReportMetric(float64(cw.writes.Load())/float64(b.N), "writes/line")
		})
	}
}

// countingWriter counts the writes (system calls, for a file) it passes on.
type countingWriter struct {
	w      io.Writer
	writes atomic.Int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.w.Write(p)
}
