package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// The load generator speaks HTTP/1.1 itself: requests are pre-serialised byte
// slices (signed in bulk), written with one system call, and responses are
// parsed just enough to find their end and, for event streams, each frame's end.
// That keeps the client's CPU per request a fraction of net/http's, which matters
// when client, proxies, simulator and Redis share two cores.

// loadSpec is one measured run against one address.
type loadSpec struct {
	Addr     string
	Conns    int
	Rate     float64       // requests per second; 0 = closed loop (each connection back to back)
	Warmup   time.Duration // requests completing before this are not recorded
	Duration time.Duration // measured window after the warm-up
	Requests *requestPool
	Stream   bool // parse event-stream frames: time to first event, inter-event gaps
	Gaps     bool // record every inter-event gap (streams with a paced upstream)
	// OnWindow, when set, is called at the start and end of the measured window
	// (to sample the servers' CPU counters at the same moments).
	OnWindow func(start bool)
}

// loadResult is what one run measured.
type loadResult struct {
	Requests  int           // responses completed inside the window
	Errors    int           // non-200 responses, broken streams, I/O errors
	FirstErr  string        // the first error, for the log
	Elapsed   time.Duration // the measured window
	Latency   latencySummary
	TTFE      latencySummary // streams: request written to first complete event
	Gap       latencySummary // streams with Gaps: delay between consecutive events
	Frames    int            // streams: events received in the window
	Scheduled int            // open loop: requests due in the window
}

func (r loadResult) rps() float64 { return float64(r.Requests) / r.Elapsed.Seconds() }

// runLoad drives spec.Addr and returns its measurements. Connections are dialled
// before the clock starts.
func runLoad(ctx context.Context, spec loadSpec) (loadResult, error) {
	conns := make([]*clientConn, spec.Conns)
	for i := range conns {
		c, err := dialConn(spec.Addr)
		if err != nil {
			for _, c := range conns[:i] {
				c.close()
			}
			return loadResult{}, err
		}
		conns[i] = c
	}
	defer func() {
		for _, c := range conns {
			c.close()
		}
	}()

	begin := time.Now()
	winStart := begin.Add(spec.Warmup)
	winEnd := winStart.Add(spec.Duration)
	var stop atomic.Bool
	runCtx, cancel := context.WithDeadline(ctx, winEnd.Add(10*time.Second))
	defer cancel()
	go func() {
		<-runCtx.Done()
		stop.Store(true)
		for _, c := range conns {
			c.interrupt()
		}
	}()

	// Open loop: a pacer hands out intended start times; latency is measured from
	// the intended time, so a stalled server is charged for the queue it causes
	// (no coordinated omission).
	var due chan time.Time
	if spec.Rate > 0 {
		due = make(chan time.Time, int(spec.Rate*(spec.Warmup+spec.Duration).Seconds())+16)
		go pace(runCtx, due, begin, winEnd, spec.Rate)
	}

	perConn := 1024
	if spec.Rate > 0 {
		perConn = int(spec.Rate*spec.Duration.Seconds())/spec.Conns + 64
	}
	workers := make([]worker, len(conns))
	var wg sync.WaitGroup
	for i := range conns {
		w := &workers[i]
		w.lat = make([]time.Duration, 0, perConn)
		if spec.Stream {
			w.ttfe = make([]time.Duration, 0, perConn)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.run(conns[i], spec, i, winStart, winEnd, due, &stop)
		}()
	}
	windowDone := make(chan struct{})
	go func() {
		// Not tied to runCtx: the end-of-window sample must happen even when
		// every worker has already returned.
		defer close(windowDone)
		if spec.OnWindow == nil {
			return
		}
		for _, at := range []struct {
			t     time.Time
			start bool
		}{{winStart, true}, {winEnd, false}} {
			select {
			case <-time.After(time.Until(at.t)):
				spec.OnWindow(at.start)
			case <-ctx.Done():
				return
			}
		}
	}()
	wg.Wait()
	<-windowDone
	stop.Store(true)
	cancel()
	if err := ctx.Err(); err != nil {
		return loadResult{}, err
	}

	res := loadResult{Elapsed: spec.Duration}
	var lat, ttfe, gaps []time.Duration
	for i := range workers {
		w := &workers[i]
		res.Requests += len(w.lat)
		res.Errors += w.errors
		res.Frames += w.frames
		res.Scheduled += w.scheduled
		if res.FirstErr == "" && w.firstErr != "" {
			res.FirstErr = w.firstErr
		}
		lat = append(lat, w.lat...)
		ttfe = append(ttfe, w.ttfe...)
		gaps = append(gaps, w.gaps...)
	}
	res.Latency = summarize(lat)
	res.TTFE = summarize(ttfe)
	res.Gap = summarize(gaps)
	return res, nil
}

// pace sends the intended start time of every request, at rate per second from
// begin until end, waking about once a millisecond and catching up in bursts.
func pace(ctx context.Context, due chan<- time.Time, begin, end time.Time, rate float64) {
	defer close(due)
	interval := time.Duration(float64(time.Second) / rate)
	next := begin
	for next.Before(end) {
		if d := time.Until(next); d > 0 {
			select {
			case <-time.After(d):
			case <-ctx.Done():
				return
			}
		}
		now := time.Now()
		for !next.After(now) && next.Before(end) {
			select {
			case due <- next:
			default: // the buffer is sized for the whole run; full means workers are gone
				return
			}
			next = next.Add(interval)
		}
	}
}

// worker owns one connection and the samples it records, so recording needs no
// synchronisation.
type worker struct {
	lat, ttfe, gaps []time.Duration
	errors          int
	frames          int
	scheduled       int
	firstErr        string
	ft              frameTracker
}

func (w *worker) fail(err error) {
	w.errors++
	if w.firstErr == "" {
		w.firstErr = err.Error()
	}
}

func (w *worker) run(c *clientConn, spec loadSpec, idx int, winStart, winEnd time.Time, due <-chan time.Time, stop *atomic.Bool) {
	n := idx // spread connections over the pool's requests
	for !stop.Load() {
		var intended time.Time
		if due != nil {
			t, ok := <-due
			if !ok {
				return
			}
			intended = t
		}
		req := spec.Requests.get(n)
		n++
		start := time.Now()
		if due != nil {
			start = intended
		} else if !start.Before(winEnd) {
			return
		}
		inWindow := !start.Before(winStart) && start.Before(winEnd)
		if due != nil && inWindow {
			w.scheduled++
		}
		var ft *frameTracker
		if spec.Stream {
			w.ft.reset(start, spec.Gaps && inWindow, w.gaps)
			ft = &w.ft
		}
		status, err := c.roundTrip(req, ft)
		done := time.Now()
		if ft != nil {
			w.gaps = w.ft.gaps
		}
		if stop.Load() && err != nil {
			return // interrupted at the deadline
		}
		if !inWindow || done.Before(winStart) {
			if err != nil {
				if rerr := c.redial(); rerr != nil {
					w.fail(rerr)
					return
				}
			}
			continue
		}
		switch {
		case err != nil:
			w.fail(err)
			if rerr := c.redial(); rerr != nil {
				w.fail(rerr)
				return
			}
			continue
		case status != 200:
			w.fail(fmt.Errorf("status %d: %s", status, c.errBody))
			continue
		case ft != nil && (ft.frames == 0 || ft.exception):
			w.fail(fmt.Errorf("stream with %d events, exception=%v: %s", ft.frames, ft.exception, ft.excText))
			continue
		}
		w.lat = append(w.lat, done.Sub(start))
		if ft != nil {
			w.ttfe = append(w.ttfe, ft.first)
			w.frames += ft.frames
		}
	}
}

// clientConn is one keep-alive HTTP/1.1 connection.
type clientConn struct {
	addr    string
	nc      net.Conn
	br      *bufio.Reader
	scratch []byte
	errBody string
	mu      sync.Mutex // guards nc against interrupt during redial
}

func dialConn(addr string) (*clientConn, error) {
	c := &clientConn{addr: addr, scratch: make([]byte, 32<<10)}
	if err := c.redial(); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *clientConn) redial() error {
	nc, err := net.DialTimeout("tcp", c.addr, 5*time.Second)
	if err != nil {
		return fmt.Errorf("dialling %s: %w", c.addr, err)
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	c.mu.Lock()
	if c.nc != nil {
		_ = c.nc.Close()
	}
	c.nc = nc
	c.mu.Unlock()
	if c.br == nil {
		c.br = newReader(nc)
	} else {
		c.br.Reset(nc)
	}
	return nil
}

// interrupt unblocks a read or write in progress (the run is over).
func (c *clientConn) interrupt() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.nc != nil {
		_ = c.nc.SetDeadline(time.Unix(1, 0))
	}
}

func (c *clientConn) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.nc != nil {
		_ = c.nc.Close()
	}
}

var errMalformed = errors.New("malformed HTTP response")

// roundTrip writes req and reads the whole response. With ft, the body is fed
// to it as it arrives, to time each event-stream frame.
func (c *clientConn) roundTrip(req []byte, ft *frameTracker) (int, error) {
	if _, err := c.nc.Write(req); err != nil {
		return 0, fmt.Errorf("writing request: %w", err)
	}
	line, err := c.readLine()
	if err != nil {
		return 0, fmt.Errorf("reading status: %w", err)
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return 0, errMalformed
	}
	status, err := strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, errMalformed
	}
	contentLength, chunked, closing := -1, false, false
	for {
		line, err := c.readLine()
		if err != nil {
			return 0, fmt.Errorf("reading headers: %w", err)
		}
		if len(line) == 0 {
			break
		}
		colon := bytes.IndexByte(line, ':')
		if colon < 0 {
			return 0, errMalformed
		}
		name, value := line[:colon], bytes.TrimSpace(line[colon+1:])
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			if contentLength, err = strconv.Atoi(string(value)); err != nil {
				return 0, errMalformed
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			chunked = bytes.EqualFold(value, []byte("chunked"))
		case bytes.EqualFold(name, []byte("Connection")):
			closing = bytes.EqualFold(value, []byte("close"))
		}
	}
	if status != 200 {
		ft = nil
		c.errBody = ""
	}
	switch {
	case chunked:
		err = c.readChunked(ft, status != 200)
	case contentLength >= 0:
		err = c.readBody(contentLength, ft, status != 200)
	default:
		err = c.readBody(-1, ft, status != 200)
		closing = true
	}
	if err != nil {
		return status, fmt.Errorf("reading body: %w", err)
	}
	if closing {
		return status, c.redial()
	}
	return status, nil
}

func (c *clientConn) readLine() ([]byte, error) {
	line, err := c.br.ReadSlice('\n')
	if err != nil {
		return nil, err
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

func (c *clientConn) readChunked(ft *frameTracker, keep bool) error {
	for {
		line, err := c.readLine()
		if err != nil {
			return err
		}
		if i := bytes.IndexByte(line, ';'); i >= 0 {
			line = line[:i]
		}
		size, err := strconv.ParseInt(string(bytes.TrimSpace(line)), 16, 64)
		if err != nil || size < 0 {
			return errMalformed
		}
		if size == 0 {
			for { // trailers
				line, err := c.readLine()
				if err != nil {
					return err
				}
				if len(line) == 0 {
					return nil
				}
			}
		}
		if err := c.readBody(int(size), ft, keep); err != nil {
			return err
		}
		if line, err := c.readLine(); err != nil || len(line) != 0 {
			return errMalformed
		}
	}
}

// readBody consumes n bytes (or until EOF when n < 0), feeding ft and keeping
// the start of an error body for the log.
func (c *clientConn) readBody(n int, ft *frameTracker, keep bool) error {
	if ft == nil && !keep && n >= 0 {
		_, err := c.br.Discard(n)
		return err
	}
	for n != 0 {
		buf := c.scratch
		if n > 0 && n < len(buf) {
			buf = buf[:n]
		}
		m, err := c.br.Read(buf)
		if m > 0 {
			if ft != nil {
				if ferr := ft.feed(buf[:m]); ferr != nil {
					return ferr
				}
			}
			if keep && len(c.errBody) < 300 {
				c.errBody += string(buf[:min(m, 300-len(c.errBody))])
			}
			if n > 0 {
				n -= m
			}
		}
		if err != nil {
			if n < 0 && errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
	return nil
}

// frameTracker finds the end of each event-stream frame in a body arriving in
// pieces (prelude: total length, headers length, CRC; then headers, payload and
// a CRC) and records when each completes.
type frameTracker struct {
	start     time.Time
	last      time.Time
	first     time.Duration
	frames    int
	exception bool
	excText   string
	recordGap bool
	gaps      []time.Duration

	pre  [12]byte
	preN int
	hdr  []byte
	hlen int
	rest int // payload and message CRC still to skip
}

func (f *frameTracker) reset(start time.Time, recordGap bool, gaps []time.Duration) {
	*f = frameTracker{start: start, recordGap: recordGap, gaps: gaps, hdr: f.hdr[:0]}
}

func (f *frameTracker) feed(p []byte) error {
	for len(p) > 0 {
		switch {
		case f.preN < len(f.pre):
			k := copy(f.pre[f.preN:], p)
			f.preN += k
			p = p[k:]
			if f.preN == len(f.pre) {
				total := int(binary.BigEndian.Uint32(f.pre[0:4]))
				f.hlen = int(binary.BigEndian.Uint32(f.pre[4:8]))
				if total < 16 || f.hlen > total-16 || total > 16<<20 {
					return errors.New("malformed event-stream prelude")
				}
				f.rest = total - 12 - f.hlen
				f.hdr = f.hdr[:0]
			}
		case len(f.hdr) < f.hlen:
			k := min(f.hlen-len(f.hdr), len(p))
			f.hdr = append(f.hdr, p[:k]...)
			p = p[k:]
		default:
			k := min(f.rest, len(p))
			f.rest -= k
			p = p[k:]
		}
		if f.preN == len(f.pre) && len(f.hdr) == f.hlen && f.rest == 0 {
			f.frameDone()
		}
	}
	return nil
}

func (f *frameTracker) frameDone() {
	now := time.Now()
	if f.frames == 0 {
		f.first = now.Sub(f.start)
	} else if f.recordGap {
		f.gaps = append(f.gaps, now.Sub(f.last))
	}
	f.last = now
	f.frames++
	if bytes.Contains(f.hdr, []byte("exception")) && !f.exception {
		f.exception = true
		f.excText = string(f.hdr)
	}
	f.preN = 0
}

func newReader(r io.Reader) *bufio.Reader { return bufio.NewReaderSize(r, 64<<10) }
