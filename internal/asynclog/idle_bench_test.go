package asynclog

import (
	"io"
	"testing"
	"time"
)

// BenchmarkWriteToIdleWriter is the cost of logging one line, to the
// caller, when the writer goroutine is parked (a replica at a few hundred
// requests a second): ns/write is the Write call alone. The pause before
// each write lets the writer goroutine park; it is not timed.
func BenchmarkWriteToIdleWriter(b *testing.B) {
	w := New(Options{Out: io.Discard})
	defer w.Close()
	line := []byte(`{"time":"2026-11-30T20:00:00Z","level":"INFO","msg":"request","request_id":"0b5c3f4e"}` + "\n")
	b.ReportAllocs()
	var total time.Duration
	for range b.N {
		time.Sleep(300 * time.Microsecond)
		t := time.Now()
		_, _ = w.Write(line)
		total += time.Since(t)
	}
	b.ReportMetric(float64(total.Nanoseconds())/float64(b.N), "ns/write")
}
