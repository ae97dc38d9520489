// Package asynclog is the gateway's log output: lines are appended to a
// bounded in-memory buffer and written by one goroutine, so a request never
// waits on write(2) (one system call per access-log line was a measurable
// part of the hot path) or on a slow log sink.
//
// Lines are written in the order they were logged, in batches: a line waits
// at most Delay (10 ms by default) for the lines logged after it, and while
// one batch is being written the next accumulates, so under load many lines
// go out in one write. A request logging its line never wakes the writer
// goroutine (a timer does, at most once per Delay): at a few hundred
// requests a second, waking it for every line was a measurable part of the
// gateway's added latency. When the sink cannot keep up and the buffer is full, lines
// are dropped and counted, never waited for. Close writes everything still
// buffered, so a clean shutdown loses nothing.
package asynclog

import (
	"bytes"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultMaxBytes is the default bound on buffered, unwritten log bytes:
// several thousand access-log lines, seconds of a busy replica's log.
const DefaultMaxBytes = 4 << 20

// maxKeptBuffer is the largest buffer kept for reuse after a batch.
const maxKeptBuffer = 1 << 20

// DefaultDelay is how long a line waits, at most, before it is written.
const DefaultDelay = 10 * time.Millisecond

// wakeBytes is the buffered size at which a writer wakes the writer goroutine
// at once instead of leaving it to the timer: a burst goes out without
// waiting for Delay.
const wakeBytes = 256 << 10

// Options configure a Writer.
type Options struct {
	// Out receives the log; each batch is one Write. Writes to Out happen
	// from one goroutine at a time.
	Out io.Writer
	// MaxBytes bounds the bytes waiting to be written; a line that does not
	// fit is dropped and counted. Zero means DefaultMaxBytes.
	MaxBytes int
	// Delay is how long a line waits, at most, for the lines after it before
	// the batch is written. Zero means DefaultDelay.
	Delay time.Duration
}

// Writer is an io.Writer for a log handler (slog's handlers write one line
// per Write). It is safe for concurrent use.
type Writer struct {
	out io.Writer
	max int

	mu      sync.Mutex
	cond    *sync.Cond // broadcast after every batch written (Flush waits on it)
	buf     []byte     // lines not yet handed to the writer goroutine
	spare   []byte     // the other buffer, reused to avoid allocating per batch
	queued  uint64     // bytes ever appended to buf
	written uint64     // bytes ever taken off buf and written (or failed)
	closed  bool
	armed   bool // timer will wake the writer goroutine for what buf holds

	delay time.Duration
	timer *time.Timer // wakes the writer goroutine Delay after a batch's first line

	outMu   sync.Mutex // serializes writes to out after Close
	wake    chan struct{}
	stop    chan struct{}
	done    chan struct{}
	dropped atomic.Uint64
}

// New starts a Writer; Close stops it.
func New(opts Options) *Writer {
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultMaxBytes
	}
	if opts.Delay <= 0 {
		opts.Delay = DefaultDelay
	}
	w := &Writer{
		out: opts.Out, max: opts.MaxBytes, delay: opts.Delay,
		wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
	}
	w.cond = sync.NewCond(&w.mu)
	w.timer = time.AfterFunc(time.Hour, w.signal)
	w.timer.Stop()
	go w.loop()
	return w
}

// Write buffers p (copying it) and returns at once. It never blocks on the
// sink: when the buffer is full p is dropped and counted. After Close it
// writes p directly, so late lines (the shutdown's own) are not lost.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		<-w.done // the final flush is over: nothing buffered can be overtaken
		w.outMu.Lock()
		defer w.outMu.Unlock()
		return w.out.Write(p)
	}
	if len(w.buf)+len(p) > w.max {
		w.mu.Unlock()
		w.dropped.Add(lines(p))
		// Reporting success: a log handler has nobody to tell, and an error
		// would not make the line fit.
		return len(p), nil
	}
	w.buf = append(w.buf, p...)
	w.queued += uint64(len(p))
	now := len(w.buf) >= wakeBytes
	if !now && !w.armed {
		// The batch's first line: the timer wakes the writer goroutine, not
		// this caller (a request that would otherwise wake a thread).
		w.armed = true
		w.timer.Reset(w.delay)
	}
	w.mu.Unlock()
	if now {
		w.signal()
	}
	return len(p), nil
}

// signal wakes the writer goroutine (once: a pending wake-up takes every
// line buffered by then).
func (w *Writer) signal() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Dropped is the number of lines dropped so far: the buffer was full, or the
// sink failed to take a batch.
func (w *Writer) Dropped() uint64 { return w.dropped.Load() }

// Flush waits until every line written before it was handed to the sink.
func (w *Writer) Flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	target := w.queued
	for w.written < target {
		select {
		case w.wake <- struct{}{}:
		default:
		}
		w.cond.Wait()
	}
}

// Close writes what is buffered and stops the writer goroutine; later writes
// go straight to the sink. It is safe to call more than once.
func (w *Writer) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		<-w.done
		return nil
	}
	w.closed = true
	w.mu.Unlock()
	w.timer.Stop() // the loop's last batch takes what it would have woken it for
	close(w.stop)
	<-w.done
	return nil
}

func (w *Writer) loop() {
	defer close(w.done)
	for {
		select {
		case <-w.wake:
			w.flushOnce()
		case <-w.stop:
			// Closed is set, so buf no longer grows: one last batch.
			w.flushOnce()
			return
		}
	}
}

// flushOnce swaps the buffers and writes the full one outside the lock, so
// writers keep appending while the sink is busy.
func (w *Writer) flushOnce() {
	w.mu.Lock()
	batch, end := w.buf, w.queued
	w.buf, w.spare = w.spare[:0], nil
	w.armed = false // the next line arms the timer again
	w.mu.Unlock()
	if len(batch) > 0 {
		w.outMu.Lock()
		_, err := w.out.Write(batch)
		w.outMu.Unlock()
		if err != nil {
			w.dropped.Add(lines(batch))
		}
	}
	if cap(batch) > maxKeptBuffer {
		batch = nil // a burst grew it: let it go rather than hold it for good
	}
	w.mu.Lock()
	w.spare = batch[:0]
	w.written = end
	w.cond.Broadcast()
	w.mu.Unlock()
}

// lines counts the log lines in p (a partial line counts as one).
func lines(p []byte) uint64 {
	n := bytes.Count(p, []byte{'\n'})
	if len(p) > 0 && p[len(p)-1] != '\n' {
		n++
	}
	return uint64(n)
}
