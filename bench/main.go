// Command bench is the gateway's load harness (issue 6). It starts, on loopback,
// the Bedrock simulator (fast mode: no artificial latency), a private
// redis-server, a bare httputil.ReverseProxy (bench/bareproxy) and the gateway
// with a generated organization, then drives each with SigV4-signed InvokeModel,
// Converse and ConverseStream requests: closed loop at fixed connection counts,
// open loop at a fixed rate, a paced stream run for time to first event and
// inter-event delay, a stream-memory run, a soak for memory flatness and a CPU
// and allocation profile of the gateway. Runs of the three targets are
// interleaved and repeated; the Markdown report gives medians with min and max.
//
//	go run ./bench -out bench/RESULTS.md   # the full run (make bench)
//	go run ./bench -quick                  # a smoke run of about a minute
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// options are the harness's flags.
type options struct {
	Out          string
	Duration     time.Duration
	Warmup       time.Duration
	Rounds       int
	Conns        []int
	Rates        []float64 // the first is the one the targets are judged at
	RateConns    int
	StreamDelay  time.Duration
	StreamRate   float64
	StreamConns  int // open streams in the stream-memory run
	Soak         time.Duration
	Profile      time.Duration
	KeepLogs     bool
	Quick        bool
	RedisServer  string
	SkipBuild    bool
	ShapeAccount int
	Ops          []operation // the matrix's operations (-ops)
	GatewayFlags []string    // added to `gateway serve` (-gateway-flag)
}

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, " ") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func parseFlags(args []string, out io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&o.Out, "out", "", "write the Markdown report to this file (default: stdout only)")
	fs.DurationVar(&o.Duration, "duration", 2*time.Second, "measured duration of each run")
	fs.DurationVar(&o.Warmup, "warmup", 250*time.Millisecond, "unmeasured start of each run")
	fs.IntVar(&o.Rounds, "rounds", 5, "rounds; each round runs every cell once for every target, interleaved")
	conns := fs.String("conns", "32,128", "connection counts of the closed-loop runs")
	rates := fs.String("rate", "200,1000", "requests per second of the open-loop (fixed rate) runs; latency targets are judged at the first")
	fs.IntVar(&o.RateConns, "rate-conns", 32, "connections available to the open-loop runs")
	fs.DurationVar(&o.StreamDelay, "stream-delay", 2*time.Millisecond, "simulator delay between events in the stream-latency run (X-Sim-Event-Delay)")
	fs.Float64Var(&o.StreamRate, "stream-rate", 200, "streams per second in the stream-latency run")
	fs.IntVar(&o.StreamConns, "stream-conns", 500, "streams held open at once in the stream-memory run")
	fs.DurationVar(&o.Soak, "soak", 30*time.Second, "sustained mixed load on the gateway, sampling its RSS (0 = skip)")
	fs.DurationVar(&o.Profile, "profile", 10*time.Second, "CPU and allocation profile of the gateway under load (0 = skip)")
	fs.BoolVar(&o.KeepLogs, "keep-logs", false, "keep the children's logs and the state file")
	fs.BoolVar(&o.Quick, "quick", false, "smoke run: 1 round of 1 s runs, short soak, no profile")
	fs.StringVar(&o.RedisServer, "redis-server", "redis-server", "redis-server binary")
	fs.BoolVar(&o.SkipBuild, "skip-build", false, "use bin/gateway and bin/bareproxy as they are")
	fs.IntVar(&o.ShapeAccount, "accounts", defaultShape.Accounts, "member accounts in the generated organization")
	ops := fs.String("ops", "InvokeModel,Converse,ConverseStream", "operations of the throughput and latency matrix (the stream runs are ConverseStream's)")
	fs.Var((*stringList)(&o.GatewayFlags), "gateway-flag", "a flag added to `gateway serve`, e.g. -gateway-flag=--quota-leases=false (repeatable)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	var errs []error
	for _, f := range strings.Split(*conns, ",") {
		var n int
		if _, err := fmt.Sscanf(strings.TrimSpace(f), "%d", &n); err != nil || n < 1 {
			errs = append(errs, fmt.Errorf("-conns: bad count %q", f))
			continue
		}
		o.Conns = append(o.Conns, n)
	}
	for _, f := range strings.Split(*rates, ",") {
		var r float64
		if _, err := fmt.Sscanf(strings.TrimSpace(f), "%g", &r); err != nil || r <= 0 {
			errs = append(errs, fmt.Errorf("-rate: bad rate %q", f))
			continue
		}
		o.Rates = append(o.Rates, r)
	}
	for _, name := range strings.Split(*ops, ",") {
		i := slices.IndexFunc(operations, func(op operation) bool { return op.Name == strings.TrimSpace(name) })
		if i < 0 {
			errs = append(errs, fmt.Errorf("-ops: unknown operation %q (InvokeModel, Converse or ConverseStream)", name))
			continue
		}
		o.Ops = append(o.Ops, operations[i])
	}
	if o.Quick { // smaller defaults; flags given explicitly still win
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		for name, apply := range map[string]func(){
			"duration": func() { o.Duration = time.Second },
			"warmup":   func() { o.Warmup = 200 * time.Millisecond },
			"rounds":   func() { o.Rounds = 1 },
			"soak":     func() { o.Soak = 5 * time.Second },
			"profile":  func() { o.Profile = 0 },
		} {
			if !set[name] {
				apply()
			}
		}
	}
	if o.Duration <= 0 || o.Rounds < 1 || len(o.Rates) == 0 || o.RateConns < 1 || o.StreamConns < 1 || o.StreamRate <= 0 {
		errs = append(errs, errors.New("-duration, -rounds, -rate, -rate-conns, -stream-conns and -stream-rate must be positive"))
	}
	if o.Profile > 0 && o.Profile < time.Second {
		errs = append(errs, errors.New("-profile must be at least 1s"))
	}
	return o, errors.Join(errs...)
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	o, err := parseFlags(args, stdout)
	if err != nil {
		return err
	}
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	if err := os.Chdir(root); err != nil {
		return err
	}
	logs, err := os.MkdirTemp("", "gateway-bench-*")
	if err != nil {
		return err
	}
	h := &harness{opts: o, out: stdout, sup: &supervisor{dir: logs}, root: root, started: time.Now()}
	h.printf("bench: logs in %s; about %s of runs\n", logs, h.estimate().Round(time.Second))
	err = h.run(ctx)
	h.sup.stopAll()
	if err != nil || o.KeepLogs {
		h.printf("bench: children's logs kept in %s\n", logs)
	} else {
		os.RemoveAll(logs)
	}
	return err
}

// moduleRoot finds the directory holding go.mod, from the working directory up.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("not inside the gateway module (no go.mod found)")
		}
		dir = parent
	}
}
