package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/bedrock-gateway/gateway/internal/state"
)

// Process and target names as they appear in the report.
const (
	procRedis   = "redis"
	procSim     = "simulator"
	procBare    = "bare proxy"
	procGateway = "gateway"

	targetDirect  = "direct"
	targetBare    = "bare proxy"
	targetGateway = "gateway"

	hubAccessKeyID = "AKIABENCHHUB00000001"
	hubSecret      = "bench-hub-secret-0123456789abcdefghijklmn"
	// benchAdminToken lets the harness read /debug/pprof, which serves admins only.
	benchAdminToken = "bench-admin-token-0123456789"
	upstreamLabel   = "anthropic.claude-3-5-haiku-20241022-v1%3A0" // escaped as SDKs send it
)

// target is one endpoint under test.
type target struct {
	Name    string
	Addr    string
	Proc    string // the process whose CPU and memory belong to it
	Callers []caller
}

// load is one column of the matrix: closed loop at Conns, or open loop at Rate.
type load struct {
	Name  string
	Conns int
	Rate  float64
}

// sample is one run of one cell against one target.
type sample struct {
	RPS            float64
	P50, P99, P999 float64            // ms
	TTFE50, TTFE99 float64            // ms
	Gap50, Gap99   float64            // ms
	CPU            map[string]float64 // µs of CPU per request, by process
	// Redis work per request over the measured window: round trips the
	// gateway sent (its gateway_redis_round_trips_total; gateway runs only)
	// and commands Redis ran, those inside scripts included (INFO stats).
	// NaN when unknown.
	RedisRoundTrips, RedisCommands float64
	Errors, Requests               int
}

type cellKey struct{ Op, Load, Target string }

type harness struct {
	opts    *options
	out     io.Writer
	sup     *supervisor
	root    string
	started time.Time

	org       *benchOrg
	opsAddr   string
	bareDebug string
	redisAddr string
	procs     map[string]*proc
	targets   []target
	loads     []load

	mu      sync.Mutex
	samples map[cellKey][]sample
	mem     memoryReport
	prof    profileReport
	machine machineInfo
}

func (h *harness) printf(format string, a ...any) { fmt.Fprintf(h.out, format, a...) }

func (h *harness) matrixLoads() []load {
	var ls []load
	for _, c := range h.opts.Conns {
		ls = append(ls, load{Name: fmt.Sprintf("%d conns", c), Conns: c})
	}
	for _, r := range h.opts.Rates {
		ls = append(ls, load{Name: fmt.Sprintf("%g req/s", r), Conns: h.opts.RateConns, Rate: r})
	}
	return ls
}

// rateLoad is the fixed-rate load the latency targets are judged at.
func (h *harness) rateLoad() load { return h.matrixLoads()[len(h.opts.Conns)] }

func (h *harness) streamLoad() load {
	return load{Name: fmt.Sprintf("%g streams/s, %v between events", h.opts.StreamRate, h.opts.StreamDelay),
		Conns: max(8, int(h.opts.StreamRate/10)), Rate: h.opts.StreamRate}
}

// estimate is how long the measured runs take (builds and start-up excluded).
func (h *harness) estimate() time.Duration {
	o := h.opts
	cell := o.Warmup + o.Duration
	cells := o.Rounds * len(o.Ops) * (len(o.Conns) + len(o.Rates)) * 3
	streams := o.Rounds * 3
	return time.Duration(cells+streams)*cell + 2*(time.Second+cell) + o.Soak + o.Profile + 6*time.Second
}

func (h *harness) run(ctx context.Context) error {
	h.samples = map[cellKey][]sample{}
	h.machine = describeMachine(ctx)
	if err := h.build(ctx); err != nil {
		return err
	}
	if err := h.startAll(ctx); err != nil {
		return err
	}
	if err := h.sanity(ctx); err != nil {
		return err
	}
	if err := h.warm(ctx); err != nil {
		return err
	}
	if err := h.streamMemory(ctx); err != nil {
		return err
	}
	if err := h.matrix(ctx); err != nil {
		return err
	}
	if err := h.streamLatency(ctx); err != nil {
		return err
	}
	if err := h.soak(ctx); err != nil {
		return err
	}
	if err := h.profile(ctx); err != nil {
		return err
	}
	for _, name := range []string{procGateway, procBare} {
		if hwm, err := procMem(h.procs[name].pid(), "VmHWM"); err == nil {
			h.mem.PeakRSS = append(h.mem.PeakRSS, namedBytes{name, hwm})
		}
	}
	for name, p := range h.procs {
		if p.exited() {
			return fmt.Errorf("%s exited during the benchmark (%v); log:\n%s", name, p.err, p.tail())
		}
	}
	report := h.report()
	h.printf("\n%s", report)
	if h.opts.Out != "" {
		if err := os.WriteFile(h.opts.Out, []byte(report), 0o644); err != nil {
			return err
		}
		h.printf("bench: wrote %s (%s in all)\n", h.opts.Out, time.Since(h.started).Round(time.Second))
	}
	return nil
}

func (h *harness) build(ctx context.Context) error {
	if h.opts.SkipBuild {
		return nil
	}
	for _, b := range []struct{ out, pkg string }{{"bin/gateway", "./cmd/gateway"}, {"bin/bareproxy", "./bench/bareproxy"}} {
		h.printf("bench: building %s\n", b.out)
		cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", b.out, b.pkg)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("building %s: %w\n%s", b.pkg, err, out)
		}
	}
	return nil
}

func (h *harness) startAll(ctx context.Context) error {
	shape := defaultShape
	shape.Accounts = h.opts.ShapeAccount
	org, err := generateOrg(shape)
	if err != nil {
		return err
	}
	h.org = org
	data, err := state.Marshal(org.State)
	if err != nil {
		return err
	}
	statePath := filepath.Join(h.sup.dir, "state.yaml")
	if err := os.WriteFile(statePath, data, 0o600); err != nil {
		return err
	}
	ports, err := freePorts(6)
	if err != nil {
		return err
	}
	redisAddr, simAddr, bareAddr, gwAddr, opsAddr := ports[0], ports[1], ports[2], ports[3], ports[4]
	h.bareDebug, h.redisAddr = ports[5], redisAddr
	h.procs = map[string]*proc{}
	h.printf("bench: starting redis-server, simulator, bare proxy and gateway (%d accounts, %d OUs, %d entitlements, %d credentials)\n",
		len(org.State.Organization.Accounts), len(org.State.Organization.Units), len(org.State.Entitlements), len(org.State.Credentials))

	type step struct {
		name  string
		env   []string
		bin   string
		args  []string
		check func() error
	}
	gw, _ := filepath.Abs("bin/gateway")
	bare, _ := filepath.Abs("bin/bareproxy")
	steps := []step{
		{procRedis, cleanEnv(), h.opts.RedisServer,
			[]string{"--port", port(redisAddr), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"}, tcpCheck(redisAddr)},
		{procSim, cleanEnv("GATEWAY_SIM_SECRET_ACCESS_KEY=" + hubSecret), gw,
			[]string{"sim", "--listen", simAddr, "--hub-access-key-id", hubAccessKeyID}, tcpCheck(simAddr)},
		{procBare, cleanEnv(), bare,
			[]string{"--listen", bareAddr, "--upstream", "http://" + simAddr, "--debug-listen", h.bareDebug}, tcpCheck(bareAddr)},
		{procGateway, cleanEnv("AWS_ACCESS_KEY_ID="+hubAccessKeyID, "AWS_SECRET_ACCESS_KEY="+hubSecret, "AWS_REGION=us-east-1", "AWS_EC2_METADATA_DISABLED=true",
			"GATEWAY_ADMIN_TOKEN=bench="+benchAdminToken), gw,
			append([]string{"serve", "--listen", gwAddr, "--ops-listen", opsAddr, "--redis-url", "redis://" + redisAddr,
				"--upstream-endpoint", "http://" + simAddr, "--region", "us-east-1", "--bootstrap", statePath,
				// The access log stays on (info, the default), as in production:
				// its cost is part of what is measured.
				"--log-format", "json", "--pprof"}, h.opts.GatewayFlags...),
			httpCheck("http://" + opsAddr + "/readyz")},
	}
	for _, s := range steps {
		p, err := h.sup.start(s.name, s.env, s.bin, s.args...)
		if err != nil {
			return err
		}
		h.procs[s.name] = p
		if err := waitReady(ctx, p, 60*time.Second, s.check); err != nil {
			return err
		}
	}
	h.opsAddr = opsAddr
	hub := aws.Credentials{AccessKeyID: hubAccessKeyID, SecretAccessKey: hubSecret}
	upstream := []caller{{Creds: hub, ModelID: upstreamLabel}}
	h.targets = []target{
		{Name: targetDirect, Addr: simAddr, Proc: procSim, Callers: upstream},
		{Name: targetBare, Addr: bareAddr, Proc: procBare, Callers: upstream},
		{Name: targetGateway, Addr: gwAddr, Proc: procGateway, Callers: org.Callers},
	}
	return nil
}

// sanity sends one request of every operation to every target and insists on
// a 200 with a well-formed body, so a misconfiguration fails loudly instead of
// benchmarking error responses.
func (h *harness) sanity(ctx context.Context) error {
	for _, t := range h.targets {
		for _, op := range operations {
			for _, c := range t.Callers {
				b, err := signedRequest(ctx, t.Addr, op, c, nil, time.Now())
				if err != nil {
					return err
				}
				conn, err := dialConn(t.Addr)
				if err != nil {
					return err
				}
				var ft *frameTracker
				if op.Stream {
					ft = &frameTracker{}
					ft.reset(time.Now(), false, nil)
				}
				status, err := conn.roundTrip(b, ft)
				conn.close()
				switch {
				case err != nil:
					return fmt.Errorf("sanity check %s %s: %w", t.Name, op.Name, err)
				case status != 200:
					return fmt.Errorf("sanity check %s %s as %s on %s: status %d: %s", t.Name, op.Name, c.Creds.AccessKeyID, c.ModelID, status, conn.errBody)
				case ft != nil && (ft.frames < 2 || ft.exception):
					return fmt.Errorf("sanity check %s %s: %d events, exception %v", t.Name, op.Name, ft.frames, ft.exception)
				}
			}
		}
	}
	h.printf("bench: every target answers every operation\n")
	return nil
}

// warm runs each target briefly so connection pools, caches and the heap
// settle before anything is measured.
func (h *harness) warm(ctx context.Context) error {
	h.printf("bench: warming up\n")
	for _, t := range h.targets {
		for _, op := range operations {
			if _, err := h.runOne(ctx, t, op, load{Conns: 32}, nil, false, 0, 600*time.Millisecond); err != nil {
				return err
			}
		}
	}
	return nil
}

// runOne runs one load against one target, sampling the CPU of every process
// over the measured window.
func (h *harness) runOne(ctx context.Context, t target, op operation, l load, extra http.Header, gaps bool, warmup, dur time.Duration) (sample, error) {
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pool, err := newRequestPool(rctx, t.Addr, op, t.Callers, extra)
	if err != nil {
		return sample{}, err
	}
	var cpu0, cpu1 map[string]time.Duration
	var redis0, redis1 redisCounters
	var cpuMu sync.Mutex
	res, err := runLoad(rctx, loadSpec{
		Addr: t.Addr, Conns: l.Conns, Rate: l.Rate, Warmup: warmup, Duration: dur,
		Requests: pool, Stream: op.Stream, Gaps: gaps,
		OnWindow: func(start bool) {
			// The counters are read outside the CPU window: reading them
			// costs the gateway and Redis a little CPU of their own.
			var rc redisCounters
			if start {
				rc = h.redisCounters(ctx, t.Name == targetGateway)
			}
			m := h.cpuAll()
			if !start {
				rc = h.redisCounters(ctx, t.Name == targetGateway)
			}
			cpuMu.Lock()
			defer cpuMu.Unlock()
			if start {
				cpu0, redis0 = m, rc
			} else {
				cpu1, redis1 = m, rc
			}
		},
	})
	if err != nil {
		return sample{}, err
	}
	s := sample{
		RPS: res.rps(), P50: ms(res.Latency.P50), P99: ms(res.Latency.P99), P999: ms(res.Latency.P999),
		TTFE50: ms(res.TTFE.P50), TTFE99: ms(res.TTFE.P99), Gap50: ms(res.Gap.P50), Gap99: ms(res.Gap.P99),
		Errors: res.Errors, Requests: res.Requests, CPU: map[string]float64{},
		RedisRoundTrips: math.NaN(), RedisCommands: math.NaN(),
	}
	cpuMu.Lock()
	if cpu0 != nil && cpu1 != nil && res.Requests > 0 {
		for name, c1 := range cpu1 {
			s.CPU[name] = float64((c1 - cpu0[name]).Microseconds()) / float64(res.Requests)
		}
		s.RedisRoundTrips, s.RedisCommands = redis1.perRequest(redis0, res.Requests)
	}
	cpuMu.Unlock()
	if res.Errors > 0 {
		h.printf("bench: warning: %s %s: %d errors, first: %s\n", t.Name, op.Name, res.Errors, res.FirstErr)
	}
	return s, nil
}

func (h *harness) cpuAll() map[string]time.Duration {
	m := make(map[string]time.Duration, len(h.procs))
	for name, p := range h.procs {
		if c, err := procCPU(p.pid()); err == nil {
			m[name] = c
		}
	}
	return m
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// rotate returns the targets starting at offset i, so no target always runs
// first (or last) in a round.
func rotate(ts []target, i int) []target {
	out := make([]target, 0, len(ts))
	for k := range ts {
		out = append(out, ts[(i+k)%len(ts)])
	}
	return out
}

// matrix runs every operation x load x target, rounds times, interleaved.
func (h *harness) matrix(ctx context.Context) error {
	h.loads = h.matrixLoads()
	total := h.opts.Rounds * len(h.opts.Ops) * len(h.loads) * len(h.targets)
	n := 0
	for r := range h.opts.Rounds {
		for oi, op := range h.opts.Ops {
			for li, l := range h.loads {
				for _, t := range rotate(h.targets, r+oi+li) {
					s, err := h.runOne(ctx, t, op, l, nil, false, h.opts.Warmup, h.opts.Duration)
					if err != nil {
						return err
					}
					n++
					h.record(cellKey{op.Name, l.Name, t.Name}, s)
					h.printf("[%3d/%d] round %d %-14s %-12s %-10s %8.0f req/s  p50 %6.3f  p99 %6.3f  p99.9 %6.3f ms  cpu %5.1f µs/req%s\n",
						n, total, r+1, op.Name, l.Name, t.Name, s.RPS, s.P50, s.P99, s.P999, s.CPU[t.Proc], errNote(s))
				}
			}
		}
	}
	return nil
}

func errNote(s sample) string {
	if s.Errors == 0 {
		return ""
	}
	return fmt.Sprintf("  ERRORS %d", s.Errors)
}

func (h *harness) record(k cellKey, s sample) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.samples[k] = append(h.samples[k], s)
}

// streamLatency runs ConverseStream with the simulator pacing events, so time
// to first event and the gaps between events show whether anything buffers.
func (h *harness) streamLatency(ctx context.Context) error {
	op := operations[2]
	l := h.streamLoad()
	extra := http.Header{"X-Sim-Event-Delay": {h.opts.StreamDelay.String()}}
	for r := range h.opts.Rounds {
		for _, t := range rotate(h.targets, r) {
			s, err := h.runOne(ctx, t, op, l, extra, true, h.opts.Warmup, h.opts.Duration)
			if err != nil {
				return err
			}
			h.record(cellKey{op.Name, l.Name, t.Name}, s)
			h.printf("[streams] round %d %-10s TTFE p50 %6.3f p99 %6.3f ms  gap p50 %6.3f p99 %6.3f ms  (%.0f streams/s)%s\n",
				r+1, t.Name, s.TTFE50, s.TTFE99, s.Gap50, s.Gap99, s.RPS, errNote(s))
		}
	}
	return nil
}

// memoryReport is what the memory runs measured.
type memoryReport struct {
	PeakRSS      []namedBytes
	StreamConns  int
	StreamDelay  time.Duration
	PerStream    []streamMem
	Soak         []memPoint
	SoakRPS      float64
	SoakErrors   int
	SoakRequests int
	Redis        []redisCommandStat // during the soak
}

type namedBytes struct {
	Name  string
	Bytes int64
}

// streamMem is the memory a process held with StreamConns streams open,
// relative to just before.
type streamMem struct {
	Name                   string
	RSSBefore, RSSDuring   int64
	HeapBefore, HeapDuring int64 // live heap + stacks, from the gateway's Go metrics; -1 when unknown
	GoroutinesBefore       int64
	GoroutinesDuring       int64
}

type memPoint struct {
	At         time.Duration
	RSS, Heap  int64
	Goroutines int64
}

// streamMemory holds many slow streams open at once through the gateway and
// the bare proxy and compares memory while they are open with memory just before.
func (h *harness) streamMemory(ctx context.Context) error {
	op := operations[2]
	n := h.opts.StreamConns
	// Slow enough that every stream is still open when memory is sampled
	// (about 20 events, so about 4 s per stream; sampled after 1.5 s).
	delay := 200 * time.Millisecond
	h.mem.StreamConns, h.mem.StreamDelay = n, delay
	extra := http.Header{"X-Sim-Event-Delay": {delay.String()}}
	for _, t := range h.targets[1:] {
		p := h.procs[t.Proc]
		m := streamMem{Name: t.Name, HeapBefore: -1, HeapDuring: -1}
		m.RSSBefore, _ = procMem(p.pid(), "VmRSS")
		m.HeapBefore, m.GoroutinesBefore = h.liveHeap(ctx, t.Name)
		rctx, cancel := context.WithCancel(ctx)
		pool, err := newRequestPool(rctx, t.Addr, op, t.Callers, extra)
		if err != nil {
			cancel()
			return err
		}
		_, err = runLoad(rctx, loadSpec{Addr: t.Addr, Conns: n,
			Warmup: 1500 * time.Millisecond, Duration: 500 * time.Millisecond,
			Requests: pool, Stream: true, OnWindow: func(start bool) {
				if !start {
					return
				}
				m.RSSDuring, _ = procMem(p.pid(), "VmRSS")
				m.HeapDuring, m.GoroutinesDuring = h.liveHeap(ctx, t.Name)
				if t.Name == targetGateway {
					// What holds the memory of an open stream (in use, right after the GC above).
					path := filepath.Join("bin", "bench-heap-streams.pprof")
					if err := fetch(ctx, "http://"+h.opsAddr+"/debug/pprof/heap", path); err == nil {
						h.prof.StreamHeapFile = path
					}
				}
			}})
		cancel()
		if err != nil {
			return err
		}
		h.mem.PerStream = append(h.mem.PerStream, m)
		h.printf("[stream memory] %-10s %d open streams: RSS %s -> %s (%s per stream)", t.Name, n,
			mib(m.RSSBefore), mib(m.RSSDuring), kib(float64(m.RSSDuring-m.RSSBefore)/float64(n)))
		if m.HeapBefore >= 0 && m.HeapDuring >= 0 {
			h.printf("; live heap+stacks %s -> %s (%s per stream), goroutines %d -> %d", mib(m.HeapBefore), mib(m.HeapDuring),
				kib(float64(m.HeapDuring-m.HeapBefore)/float64(n)), m.GoroutinesBefore, m.GoroutinesDuring)
		}
		h.printf("\n")
	}
	return nil
}

// liveHeap reads a proxy's heap and stack bytes in use right after a garbage
// collection, so it counts live memory rather than garbage awaiting collection:
// the gateway's through pprof's heap handler (gc=1) and its Go metrics, the bare
// proxy's from its debug listener.
func (h *harness) liveHeap(ctx context.Context, targetName string) (heap, goroutines int64) {
	if targetName == targetBare {
		var buf strings.Builder
		if err := fetchTo(ctx, "http://"+h.bareDebug+"/memstats", &buf); err != nil {
			return -1, -1
		}
		if _, err := fmt.Sscan(buf.String(), &heap, &goroutines); err != nil {
			return -1, -1
		}
		return heap, goroutines
	}
	if err := fetch(ctx, "http://"+h.opsAddr+"/debug/pprof/heap?gc=1", os.DevNull); err != nil {
		return -1, -1
	}
	m := h.scrape(ctx, "go_memstats_heap_inuse_bytes", "go_memstats_stack_inuse_bytes", "go_goroutines")
	if len(m) < 3 {
		return -1, -1
	}
	return int64(m["go_memstats_heap_inuse_bytes"] + m["go_memstats_stack_inuse_bytes"]), int64(m["go_goroutines"])
}

// scrape returns the named unlabelled metrics from the gateway's /metrics.
func (h *harness) scrape(ctx context.Context, names ...string) map[string]float64 {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+h.opsAddr+"/metrics", nil)
	if err != nil {
		return nil
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		for _, n := range names {
			if rest, ok := strings.CutPrefix(line, n+" "); ok {
				if v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64); err == nil {
					out[n] = v
				}
			}
		}
	}
	return out
}

// mixedLoad drives the gateway with all three operations at once for d.
func (h *harness) mixedLoad(ctx context.Context, d time.Duration) (rps float64, requests, errs int, err error) {
	gw := h.targets[2]
	shares := []int{12, 12, 8}
	var wg sync.WaitGroup
	results := make([]loadResult, len(operations))
	errsOut := make([]error, len(operations))
	for i, op := range operations {
		pool, err := newRequestPool(ctx, gw.Addr, op, gw.Callers, nil)
		if err != nil {
			return 0, 0, 0, err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errsOut[i] = runLoad(ctx, loadSpec{Addr: gw.Addr, Conns: shares[i], Duration: d, Requests: pool, Stream: op.Stream})
		}()
	}
	wg.Wait()
	for i, r := range results {
		if errsOut[i] != nil {
			return 0, 0, 0, errsOut[i]
		}
		rps += r.rps()
		requests += r.Requests
		errs += r.Errors
	}
	return rps, requests, errs, nil
}

// soak runs the mixed load for the soak duration, sampling the gateway's RSS,
// heap and goroutines every second.
func (h *harness) soak(ctx context.Context) error {
	if h.opts.Soak <= 0 {
		return nil
	}
	h.printf("bench: soak: %v of mixed load on the gateway\n", h.opts.Soak)
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pid := h.procs[procGateway].pid()
	begin := time.Now()
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-rctx.Done():
				return
			case <-t.C:
				rss, _ := procMem(pid, "VmRSS")
				m := h.scrape(rctx, "go_memstats_heap_inuse_bytes", "go_memstats_stack_inuse_bytes", "go_goroutines")
				h.mem.Soak = append(h.mem.Soak, memPoint{At: time.Since(begin).Round(time.Second), RSS: rss,
					Heap: int64(m["go_memstats_heap_inuse_bytes"] + m["go_memstats_stack_inuse_bytes"]), Goroutines: int64(m["go_goroutines"])})
			}
		}
	}()
	_, _ = redisCall(h.redisAddr, "CONFIG", "RESETSTAT")
	rps, requests, errs, err := h.mixedLoad(rctx, h.opts.Soak)
	cancel()
	<-done
	if err != nil {
		return err
	}
	h.mem.SoakRPS, h.mem.SoakErrors, h.mem.SoakRequests = rps, errs, requests
	if info, err := redisCall(h.redisAddr, "INFO", "commandstats"); err == nil {
		h.mem.Redis = parseCommandStats(info)
	}
	if n := len(h.mem.Soak); n > 1 {
		first, last := h.mem.Soak[min(n-1, max(1, n/10))], h.mem.Soak[n-1]
		h.printf("bench: soak: %.0f req/s, RSS %s at %v, %s at %v; %d goroutines at the end\n", rps,
			mib(first.RSS), first.At, mib(last.RSS), last.At, last.Goroutines)
	}
	return nil
}
