// Package app owns the `gateway` command line: it dispatches subcommands (serve,
// sim, config, version and the admin commands) and turns their errors into exit
// codes. cmd/gateway only adds signals and the process environment.
package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime/debug"
	"slices"
	"strings"

	"github.com/bedrock-gateway/gateway/internal/cli"
	"github.com/bedrock-gateway/gateway/internal/cloudwatch"
	"github.com/bedrock-gateway/gateway/internal/metering"
)

// Env is the process environment a command runs in.
type Env struct {
	Stdout, Stderr io.Writer
	Getenv         func(string) string
	LookupEnv      func(string) (string, bool)
}

// ErrUsage means the usage text was already printed.
var ErrUsage = errors.New("usage")

// Version is set at build time with -ldflags "-X .../internal/app.Version=v1.2.3".
var Version = "dev"

// ExitCode maps an error to the process exit code: 2 for usage errors, 3
// when `usage reconcile` found a difference over its tolerance, 1 otherwise.
func ExitCode(err error) int {
	if errors.Is(err, ErrUsage) || errors.Is(err, flag.ErrHelp) {
		return 2
	}
	if errors.Is(err, cli.ErrReconcileDifference) {
		return 3
	}
	return 1
}

const usage = `gateway: the Bedrock Entitlement Gateway

Usage: gateway <command> [flags]

Server:
  serve        run the gateway (gateway serve -h lists every flag)
  sim          run the Bedrock Runtime simulator
  config       validate | reference: check a configuration, print the configuration reference
  version      print the version

Admin (over the admin API: --admin-url, GATEWAY_ADMIN_TOKEN):
  apply        make the store match a state file (-f FILE [--dry-run] [--prune])
  export       write the whole state as a state file
  entitlements list | get NAME | create | update NAME | delete NAME
  shares       add | remove ENTITLEMENT TARGET... [--csv FILE] | list ENTITLEMENT
  credentials  issue | list | revoke
  principals   deny | allow PATTERN... | list: IAM roles and users refused outright
  quota        [ENTITLEMENT] each monthly cap: limit, used, reserved, remaining, resets at
  replicas     the live replicas and the state version each serves (--wait: until the latest change is in force on all)
  usage        monthly usage report (--month YYYY-MM | --from YYYY-MM --to YYYY-MM, --by team|account|entitlement|model|tier|principal);
               usage reconcile: the ledger against Bedrock's own counts in CloudWatch (exit 3 over --tolerance)
  audit        the audit log
  org          sync: read AWS Organizations, show (--apply: write) the difference
  billing      sync: application inference profiles per team or entitlement, for cost in AWS Billing

Member:
  token        mint an IAM identity token (AWS credential chain; --gateway-id or GATEWAY_ID, --export)

Output: -o, --output table|json|yaml|csv on every admin verb that prints (table by
default; csv for rows; export writes yaml or json). Every command and subcommand takes
-h for its usage, e.g. gateway entitlements update -h.
`

// Main runs one command. A *cli.UsageError (an unknown flag, a missing
// argument) is printed here, as one line and a hint, and returned wrapping
// ErrUsage: the exit code is 2 and the caller prints nothing more.
func Main(ctx context.Context, args []string, env Env) error {
	err := run(ctx, args, env)
	var ue *cli.UsageError
	if errors.As(err, &ue) {
		fmt.Fprintln(env.Stderr, ue.Error())
		return fmt.Errorf("%w: %w", ErrUsage, err)
	}
	return err
}

func run(ctx context.Context, args []string, env Env) error {
	if len(args) == 0 {
		fmt.Fprint(env.Stderr, usage)
		return ErrUsage
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], env)
	case "sim":
		return runSim(ctx, args[1:], env)
	case "config":
		return configCmd(args[1:], env)
	case "version", "--version", "-version":
		fmt.Fprintln(env.Stdout, versionString())
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(env.Stdout, usage)
		return nil
	}
	if slices.Contains(cli.Commands(), args[0]) {
		return cli.Run(ctx, args, cli.Env{Stdout: env.Stdout, Stderr: env.Stderr, Getenv: env.Getenv, LookupEnv: env.LookupEnv,
			Prices: loadPricer})
	}
	fmt.Fprintf(env.Stderr, "gateway: unknown command %q\n\n%s", args[0], usage)
	return ErrUsage
}

// loadPricer reads a price table for `gateway usage reconcile`.
func loadPricer(path string) (cloudwatch.Pricer, error) {
	t, err := metering.LoadPrices(path)
	if err != nil {
		return nil, err
	}
	return t.PriceTokens, nil
}

func versionString() string {
	v := Version
	if bi, ok := debug.ReadBuildInfo(); ok {
		var rev, dirty string
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					dirty = "-dirty"
				}
			}
		}
		if rev != "" {
			v += " (" + rev[:min(12, len(rev))] + dirty + ")"
		}
		v += " " + bi.GoVersion
	}
	return "gateway " + strings.TrimSpace(v)
}
