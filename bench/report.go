package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"
)

// machineInfo describes where the numbers come from.
type machineInfo struct {
	CPU, Kernel, Go, Commit, LoadAvg string
	Cores                            int
	Date                             time.Time
}

func describeMachine(ctx context.Context) machineInfo {
	m := machineInfo{Cores: runtime.NumCPU(), Go: runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH, Date: time.Now().UTC()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 3 {
			m.LoadAvg = strings.Join(f[:3], " ")
		}
	}
	if out, err := exec.CommandContext(ctx, "git", "rev-parse", "--short", "HEAD").Output(); err == nil {
		m.Commit = strings.TrimSpace(string(out))
		if st, err := exec.CommandContext(ctx, "git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(st) > 0 {
			m.Commit += " (with uncommitted changes)"
		}
	}
	return m
}

// field extracts one metric from a sample.
type field func(s sample) float64

func (h *harness) spreadOf(k cellKey, f field) spread {
	var v []float64
	for _, s := range h.samples[k] {
		v = append(v, f(s))
	}
	return aggregate(v)
}

// pairedSpread aggregates f(gateway round i, bare proxy round i): the rounds
// were interleaved, so round i of each ran under the same machine conditions.
func (h *harness) pairedSpread(op, loadName string, f func(gw, bare sample) float64) spread {
	gw := h.samples[cellKey{op, loadName, targetGateway}]
	bare := h.samples[cellKey{op, loadName, targetBare}]
	var v []float64
	for i := range min(len(gw), len(bare)) {
		v = append(v, f(gw[i], bare[i]))
	}
	return aggregate(v)
}

func (h *harness) errorsOf(k cellKey) int {
	n := 0
	for _, s := range h.samples[k] {
		n += s.Errors
	}
	return n
}

// fmtSpread prints "median (min–max)", or just the value for one round.
func fmtSpread(s spread, decimals int) string {
	if math.IsNaN(s.Med) {
		return "n/a"
	}
	f := func(x float64) string { return fmt.Sprintf("%.*f", decimals, x) }
	if s.N <= 1 || s.Min == s.Max {
		return f(s.Med)
	}
	return fmt.Sprintf("%s (%s–%s)", f(s.Med), f(s.Min), f(s.Max))
}

func rateList(rates []float64) string {
	var parts []string
	for _, r := range rates {
		parts = append(parts, fmt.Sprintf("%g req/s", r))
	}
	return strings.Join(parts, ", ")
}

func mib(b int64) string   { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
func kib(b float64) string { return fmt.Sprintf("%.1f KiB", b/(1<<10)) }

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "**not met**"
}

func (h *harness) report() string {
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	o, m := h.opts, h.machine
	st := h.org.State
	p("# Load benchmark results\n\n")
	p("Written by `make bench` (`go run ./bench -out bench/RESULTS.md`); rerun it after any change to the request path.\n\n")
	p("| | |\n|---|---|\n")
	p("| date | %s |\n", m.Date.Format("2006-01-02 15:04 UTC"))
	p("| CPU | %s, %d cores |\n", m.CPU, m.Cores)
	p("| Go | %s |\n| kernel | Linux %s |\n", m.Go, m.Kernel)
	p("| load average at start | %s (the machine is shared; see the min–max ranges) |\n", m.LoadAvg)
	if m.Commit != "" {
		p("| commit | %s |\n", m.Commit)
	}
	p("| runs | %d rounds; each run %v measured after %v of warm-up; targets interleaved, order rotated every run |\n", o.Rounds, o.Duration, o.Warmup)
	if len(o.GatewayFlags) > 0 {
		p("| gateway flags added | `%s` |\n", strings.Join(o.GatewayFlags, " "))
	}
	p("| organization | %d accounts in %d OUs nested 3 deep, %d entitlements shared with OUs, accounts and the organization, %d SigV4 credentials; every cap and rate limit set, none binding |\n",
		len(st.Organization.Accounts), len(st.Organization.Units), len(st.Entitlements), len(st.Credentials))
	p("| requests | %d (credential, entitlement) pairs through the gateway; `max_tokens` 16, %d output tokens per response from the simulator |\n\n", len(h.org.Callers), 16)

	p("## How to read\n\n")
	p("- Every cell is the **median over the rounds, with min–max in parentheses**. Ratios and differences are taken per round (gateway round *i* against bare proxy round *i*, run back to back) and then aggregated.\n")
	p("- **direct** is the simulator itself; **bare proxy** is `httputil.ReverseProxy` with `FlushInterval: -1` and a tuned transport (`bench/bareproxy`), forwarding to the simulator unchanged; **gateway** is `gateway serve` doing the full pipeline per request: SigV4 verification, authorization against the snapshot, estimate and reservation in Redis, re-signing, usage extraction, settlement and metrics.\n")
	p("- **N conns** is a closed loop: N keep-alive connections, each sending its next request when the previous response ends; it measures throughput, and its latency includes queueing. **req/s** loads are open loops at a fixed rate (%s); latency is measured from each request's *intended* send time, so a stall is charged to every request it delays (no coordinated omission).\n", rateList(o.Rates))
	p("- Latencies are client-side, request written to last byte read, in milliseconds; p99.9 of a %v run rests on a handful of requests.\n", o.Duration)
	p("- **CPU µs/req** is a process's user+system CPU time over the measured window (from `/proc/<pid>/stat`) divided by the requests completed: the gateway's own cost, and Redis's on its behalf.\n")
	p("- Load generator, simulator, proxy, gateway and Redis all share the same %d cores, so absolute numbers are far below dedicated hardware; compare ratios measured in the same run.\n", m.Cores)
	p("- **Redis round trips/req** is the gateway's `gateway_redis_round_trips_total` (commands and pipelines it sent) over the window divided by the requests; **Redis commands/req** is Redis's `total_commands_processed` (commands inside Lua scripts included) over the same window. Both include the gateway's background work (state sync, settlement batches, heartbeats), as a steady state does.\n")
	p("- The gateway logs every request (the access log at info, JSON, to a file), as in production.\n")
	for _, l := range h.matrixLoads()[len(o.Conns):] {
		if busy := h.coresBusy("InvokeModel", l.Name, targetGateway); !math.IsNaN(busy) {
			p("- During the gateway's InvokeModel runs at %s the servers alone (gateway, Redis, simulator; load generator excluded) kept %.2f of the %d cores busy. Near saturation any pause from other tenants of the machine queues requests, and a round with huge latencies appears (a wide min–max range; when `direct` shows it too, it was the machine).\n",
				l.Name, busy, m.Cores)
		}
	}
	p("\n")

	h.reportTargets(p)
	h.reportMatrix(p)
	h.reportStreams(p)
	h.reportMemory(p)
	h.reportProfile(p)
	return b.String()
}

type printer func(format string, a ...any)

func (h *harness) reportTargets(p printer) {
	o := h.opts
	rateName := h.rateLoad().Name
	p("## Targets\n\n")
	p("Issue 14's goals, then issue 6's stream and memory goals. Throughput and latency are against the bare proxy in the same round; Redis work is per gateway request at %d connections (steady state, every background task included).\n\n", o.Conns[0])
	p("| target | goal | measured | |\n|---|---|---|---|\n")
	ratio := func(gw, bare sample) float64 { return gw.RPS / bare.RPS }
	for _, c := range o.Conns {
		l := fmt.Sprintf("%d conns", c)
		for _, op := range h.opts.Ops {
			s := h.pairedSpread(op.Name, l, ratio)
			p("| throughput, gateway / bare proxy, %s, %s | ≥ 0.85 | %s | %s |\n", op.Name, l, fmtSpread(s, 2), verdict(s.Med >= 0.85))
		}
	}
	for _, op := range h.opts.Ops {
		s50 := h.pairedSpread(op.Name, rateName, func(gw, bare sample) float64 { return gw.P50 - bare.P50 })
		s99 := h.pairedSpread(op.Name, rateName, func(gw, bare sample) float64 { return gw.P99 - bare.P99 })
		p("| added p50 latency over the bare proxy, %s at %s | ≤ 0.15 ms | %s ms | %s |\n", op.Name, rateName, fmtSpread(s50, 3), verdict(s50.Med <= 0.15))
		p("| added p99 latency over the bare proxy, %s at %s | ≤ 1 ms | %s ms | %s |\n", op.Name, rateName, fmtSpread(s99, 3), verdict(s99.Med <= 1))
	}
	c := fmt.Sprintf("%d conns", o.Conns[0])
	for _, op := range h.opts.Ops {
		k := cellKey{op.Name, c, targetGateway}
		rt := h.spreadOf(k, func(s sample) float64 { return s.RedisRoundTrips })
		cpu := h.spreadOf(k, func(s sample) float64 { return cpuOf(s, procRedis) })
		p("| Redis round trips per request, %s, %s | ≤ 0.05 | %s | %s |\n", op.Name, c, fmtSpread(rt, 3), verdict(rt.Med <= 0.05))
		p("| Redis CPU per request, %s, %s | ≤ 10 µs | %s µs | %s |\n", op.Name, c, fmtSpread(cpu, 1), verdict(cpu.Med <= 10))
	}
	sl := h.streamLoad().Name
	ttfe := h.pairedSpread("ConverseStream", sl, func(gw, bare sample) float64 { return gw.TTFE50 - bare.TTFE50 })
	p("| time to first event over the bare proxy (p50, paced stream) | ≤ 0.5 ms | %s ms | %s |\n", fmtSpread(ttfe, 3), verdict(ttfe.Med <= 0.5))
	gap := h.spreadOf(cellKey{"ConverseStream", sl, targetGateway}, func(s sample) float64 { return s.Gap50 })
	p("| no buffering: gateway inter-event delay p50 equals the simulator's %v | ≈ %v | %s ms | %s |\n", o.StreamDelay, o.StreamDelay,
		fmtSpread(gap, 3), verdict(math.Abs(gap.Med-ms(o.StreamDelay)) < 0.5*ms(o.StreamDelay)))
	for _, sm := range h.mem.PerStream {
		if sm.Name != targetGateway {
			continue
		}
		per := float64(sm.RSSDuring-sm.RSSBefore) / float64(h.mem.StreamConns)
		measured := "RSS " + kib(per)
		if sm.HeapBefore >= 0 && sm.HeapDuring >= 0 {
			per = float64(sm.HeapDuring-sm.HeapBefore) / float64(h.mem.StreamConns)
			measured = fmt.Sprintf("live heap+stacks %s (%s)", kib(per), measured)
		}
		p("| gateway memory per open stream (%d open) | a few tens of KiB | %s | %s |\n", h.mem.StreamConns, measured, verdict(per <= 64<<10))
	}
	defer h.reportCPUBudget(p)
	if n := len(h.mem.Soak); n > 2 {
		first, last := h.mem.Soak[min(n-1, max(1, n/10))], h.mem.Soak[n-1]
		growth := float64(last.RSS-first.RSS) / float64(first.RSS)
		p("| memory flat under sustained load | no growth | RSS %s at %v, %s at %v (%+.1f%%) over a %v soak | %s |\n",
			mib(first.RSS), first.At, mib(last.RSS), last.At, 100*growth, o.Soak, verdict(growth < 0.10))
	}
	p("\n")
}

func (h *harness) reportMatrix(p printer) {
	p("## Throughput and latency\n\n")
	for _, op := range h.opts.Ops {
		p("### %s\n\n", op.Name)
		head := "| load | target | req/s | p50 ms | p99 ms | p99.9 ms | CPU µs/req |"
		sep := "|---|---|---|---|---|---|---|"
		if op.Stream {
			head += " first event p50 ms | first event p99 ms |"
			sep += "---|---|"
		}
		p("%s errors |\n%s---|\n", head, sep)
		for _, l := range h.loads {
			for _, t := range h.targets {
				k := cellKey{op.Name, l.Name, t.Name}
				proc := t.Proc
				p("| %s | %s | %s | %s | %s | %s | %s |", l.Name, t.Name,
					fmtSpread(h.spreadOf(k, func(s sample) float64 { return s.RPS }), 0),
					fmtSpread(h.spreadOf(k, func(s sample) float64 { return s.P50 }), 3),
					fmtSpread(h.spreadOf(k, func(s sample) float64 { return s.P99 }), 3),
					fmtSpread(h.spreadOf(k, func(s sample) float64 { return s.P999 }), 3),
					fmtSpread(h.spreadOf(k, func(s sample) float64 { return cpuOf(s, proc) }), 1))
				if op.Stream {
					p(" %s | %s |", fmtSpread(h.spreadOf(k, func(s sample) float64 { return s.TTFE50 }), 3),
						fmtSpread(h.spreadOf(k, func(s sample) float64 { return s.TTFE99 }), 3))
				}
				p(" %d |\n", h.errorsOf(k))
			}
		}
		p("\n")
	}
	p("### Gateway against the bare proxy\n\n")
	p("| operation | load | throughput ratio | added p50 ms | added p99 ms | gateway CPU µs/req | bare proxy CPU µs/req | Redis CPU µs/req (gateway runs) | Redis round trips/req | Redis commands/req |\n|---|---|---|---|---|---|---|---|---|---|\n")
	for _, op := range h.opts.Ops {
		for _, l := range h.loads {
			gw := cellKey{op.Name, l.Name, targetGateway}
			bare := cellKey{op.Name, l.Name, targetBare}
			p("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", op.Name, l.Name,
				fmtSpread(h.pairedSpread(op.Name, l.Name, func(g, b sample) float64 { return g.RPS / b.RPS }), 2),
				fmtSpread(h.pairedSpread(op.Name, l.Name, func(g, b sample) float64 { return g.P50 - b.P50 }), 3),
				fmtSpread(h.pairedSpread(op.Name, l.Name, func(g, b sample) float64 { return g.P99 - b.P99 }), 3),
				fmtSpread(h.spreadOf(gw, func(s sample) float64 { return cpuOf(s, procGateway) }), 1),
				fmtSpread(h.spreadOf(bare, func(s sample) float64 { return cpuOf(s, procBare) }), 1),
				fmtSpread(h.spreadOf(gw, func(s sample) float64 { return cpuOf(s, procRedis) }), 1),
				fmtSpread(h.spreadOf(gw, func(s sample) float64 { return s.RedisRoundTrips }), 3),
				fmtSpread(h.spreadOf(gw, func(s sample) float64 { return s.RedisCommands }), 2))
		}
	}
	p("\n")
}

func cpuOf(s sample, proc string) float64 {
	v, ok := s.CPU[proc]
	if !ok {
		return math.NaN()
	}
	return v
}

func (h *harness) reportStreams(p printer) {
	l := h.streamLoad()
	p("## Streams\n\n")
	p("ConverseStream at %g streams/s (open loop) with the simulator waiting %v between events (`X-Sim-Event-Delay`), so that buffering anywhere would show as a late first event and collapsed gaps. First event: request written to the first complete event-stream frame read.\n\n", l.Rate, h.opts.StreamDelay)
	p("| target | first event p50 ms | first event p99 ms | inter-event p50 ms | inter-event p99 ms | whole stream p50 ms | errors |\n|---|---|---|---|---|---|---|\n")
	for _, t := range h.targets {
		k := cellKey{"ConverseStream", l.Name, t.Name}
		p("| %s | %s | %s | %s | %s | %s | %d |\n", t.Name,
			fmtSpread(h.spreadOf(k, func(s sample) float64 { return s.TTFE50 }), 3),
			fmtSpread(h.spreadOf(k, func(s sample) float64 { return s.TTFE99 }), 3),
			fmtSpread(h.spreadOf(k, func(s sample) float64 { return s.Gap50 }), 3),
			fmtSpread(h.spreadOf(k, func(s sample) float64 { return s.Gap99 }), 3),
			fmtSpread(h.spreadOf(k, func(s sample) float64 { return s.P50 }), 3),
			h.errorsOf(k))
	}
	p("\n")
}

func (h *harness) reportMemory(p printer) {
	p("## Memory\n\n")
	p("| process | peak RSS (VmHWM) over the whole run |\n|---|---|\n")
	for _, nb := range h.mem.PeakRSS {
		p("| %s | %s |\n", nb.Name, mib(nb.Bytes))
	}
	p("\n")
	if len(h.mem.PerStream) > 0 {
		p("**Open streams.** %d ConverseStream calls held open at once (the simulator waits %v between events), memory sampled while they are all open, against just before:\n\n", h.mem.StreamConns, h.mem.StreamDelay)
		p("| process | RSS before | RSS with streams open | per stream (RSS) | per stream (live Go heap + stacks) | goroutines before → during |\n|---|---|---|---|---|---|\n")
		for _, sm := range h.mem.PerStream {
			heap, gor := "n/a", "n/a"
			if sm.HeapBefore >= 0 && sm.HeapDuring >= 0 {
				heap = kib(float64(sm.HeapDuring-sm.HeapBefore) / float64(h.mem.StreamConns))
				gor = fmt.Sprintf("%d → %d", sm.GoroutinesBefore, sm.GoroutinesDuring)
			}
			p("| %s | %s | %s | %s | %s | %s |\n", sm.Name, mib(sm.RSSBefore), mib(sm.RSSDuring),
				kib(float64(sm.RSSDuring-sm.RSSBefore)/float64(h.mem.StreamConns)), heap, gor)
		}
		p("\nRSS deltas understate when the process already holds memory freed after earlier load. The live heap figure is heap plus stacks in use read right after a forced GC: the gateway's `go_memstats_heap_inuse_bytes + go_memstats_stack_inuse_bytes` after `/debug/pprof/heap?gc=1`, the bare proxy's `runtime.MemStats` from its debug listener.\n\n")
	}
	if n := len(h.mem.Soak); n > 0 {
		p("**Soak.** %v of InvokeModel, Converse and ConverseStream at once (12, 12 and 8 connections) through the gateway: %.0f req/s, %d errors. Gateway memory sampled every second:\n\n", h.opts.Soak, h.mem.SoakRPS, h.mem.SoakErrors)
		p("| time | RSS | Go heap + stacks in use | goroutines |\n|---|---|---|---|\n")
		step := max(1, n/8)
		for i := 0; i < n; i += step {
			pt := h.mem.Soak[i]
			p("| %v | %s | %s | %d |\n", pt.At, mib(pt.RSS), mib(pt.Heap), pt.Goroutines)
		}
		if (n-1)%step != 0 {
			pt := h.mem.Soak[n-1]
			p("| %v | %s | %s | %d |\n", pt.At, mib(pt.RSS), mib(pt.Heap), pt.Goroutines)
		}
		p("\nFor the issue's five-minute check run `go run ./bench -soak 5m`.\n\n")
	}
	if len(h.mem.Redis) > 0 && h.mem.SoakRequests > 0 {
		p("**Redis work per gateway request** during the soak (`INFO commandstats`, reset at its start; µs per call as Redis measures it, excluding network and parsing):\n\n")
		p("| command | calls per request | µs per call |\n|---|---|---|\n")
		for _, c := range h.mem.Redis {
			if c.Command == "info" || c.Command == "config|resetstat" {
				continue
			}
			p("| %s | %.2f | %.1f |\n", c.Command, float64(c.Calls)/float64(h.mem.SoakRequests), c.UsecPerCall)
		}
		p("\n")
	}
}

func (h *harness) reportProfile(p printer) {
	if h.prof.CPUTop == "" && h.prof.AllocTop == "" {
		return
	}
	p("## Gateway profile\n\n")
	p("%ds CPU and allocation profiles under the soak's mixed load (%.0f req/s), from `--pprof` on the ops listener; files in `%s` (not committed). Top of `go tool pprof -top`:\n\n",
		h.prof.Seconds, h.prof.RPS, strings.Join(h.prof.Files, "`, `"))
	if h.prof.CPUTop != "" {
		p("<details><summary>CPU</summary>\n\n```\n%s\n```\n</details>\n\n", h.prof.CPUTop)
	}
	if h.prof.AllocTop != "" {
		p("<details><summary>Allocations (alloc_space)</summary>\n\n```\n%s\n```\n</details>\n\n", h.prof.AllocTop)
	}
	if h.prof.StreamHeapTop != "" {
		p("<details><summary>Memory in use with %d streams open (inuse_space)</summary>\n\n```\n%s\n```\n</details>\n\n", h.mem.StreamConns, h.prof.StreamHeapTop)
	}
}

// reportCPUBudget explains the closed-loop ratio: with every process on the same
// cores, throughput follows the CPU each request costs all of them together.
func (h *harness) reportCPUBudget(p printer) {
	if len(h.opts.Conns) == 0 {
		return
	}
	l := fmt.Sprintf("%d conns", h.opts.Conns[0])
	p("\nCPU per request at %s (medians over rounds; the load generator and simulator cost the same for both):\n\n", l)
	p("| operation | bare proxy | gateway | Redis for the gateway | gateway + Redis over bare proxy |\n|---|---|---|---|---|\n")
	for _, op := range h.opts.Ops {
		bare := h.spreadOf(cellKey{op.Name, l, targetBare}, func(s sample) float64 { return cpuOf(s, procBare) })
		gw := h.spreadOf(cellKey{op.Name, l, targetGateway}, func(s sample) float64 { return cpuOf(s, procGateway) })
		rd := h.spreadOf(cellKey{op.Name, l, targetGateway}, func(s sample) float64 { return cpuOf(s, procRedis) })
		p("| %s | %.0f µs | %.0f µs | %.0f µs | %.1f× |\n", op.Name, bare.Med, gw.Med, rd.Med, (gw.Med+rd.Med)/bare.Med)
	}
	p("\n")
}

// coresBusy is the median over rounds of the CPU all server processes used
// during a cell's runs against t, in cores.
func (h *harness) coresBusy(op, loadName, t string) float64 {
	return h.spreadOf(cellKey{op, loadName, t}, func(s sample) float64 {
		total := 0.0
		for _, v := range s.CPU {
			total += v
		}
		if len(s.CPU) == 0 {
			return math.NaN()
		}
		return total * s.RPS / 1e6
	}).Med
}
