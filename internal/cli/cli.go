// Package cli owns the admin subcommands of the gateway binary (apply,
// entitlements, shares, credentials, audit). They talk to a running gateway's
// admin API; the admin token comes only from GATEWAY_ADMIN_TOKEN, never from a
// flag, so it never shows up in shell history or process lists.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	cwpub "github.com/bedrock-gateway/gateway/internal/cloudwatch"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/bedrock-gateway/gateway/internal/suggest"
)

// Env is what a command may use of its process.
type Env struct {
	Stdout, Stderr io.Writer
	Getenv         func(string) string
	// LookupEnv resolves secret_env and key_env of a state file; nil derives it
	// from Getenv.
	LookupEnv func(string) (string, bool)
	// HTTPClient talks to the admin API; nil means a client with a one-minute
	// timeout.
	HTTPClient *http.Client
	// CloudWatch builds the client `usage reconcile` reads a region with;
	// nil: the official client from the AWS config chain.
	CloudWatch CloudWatchFactory
	// Profiles attributes inference-profile ARNs to entitlements and teams
	// in `usage reconcile`; nil: none (only the ledger names who used what).
	Profiles cwpub.ProfileResolver
	// Prices reads a price table file (--prices-file of `usage reconcile`)
	// into a Pricer; the price table lives server-side (metering), so the
	// program supplies it. nil: --prices-file is refused.
	Prices func(path string) (cwpub.Pricer, error)
}

func (e *Env) defaults() {
	if e.Stdout == nil {
		e.Stdout = io.Discard
	}
	if e.Stderr == nil {
		e.Stderr = io.Discard
	}
	if e.Getenv == nil {
		e.Getenv = func(string) string { return "" }
	}
	if e.LookupEnv == nil {
		getenv := e.Getenv
		e.LookupEnv = func(k string) (string, bool) { v := getenv(k); return v, v != "" }
	}
	if e.HTTPClient == nil {
		e.HTTPClient = &http.Client{Timeout: time.Minute}
	}
}

// Environment variables the commands read.
const (
	EnvAdminURL   = "GATEWAY_ADMIN_URL"
	EnvAdminToken = "GATEWAY_ADMIN_TOKEN"

	defaultAdminURL = "http://127.0.0.1:9090"
)

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, env Env) error
}

func commands() []command {
	return []command{
		{"apply", "make the store match a state file", runApply},
		{"entitlements", "list | get | create | update | delete managed entitlements", runEntitlements},
		{"shares", "add | remove | list the shares of an entitlement", runShares},
		{"credentials", "issue | list | revoke member credentials", runCredentials},
		{"principals", "deny | allow | list IAM principals on the deny list", runPrincipals},
		{"audit", "show the audit log", runAudit},
		{"export", "write the whole state as a state file", runExport},
		{"usage", "the monthly usage report", runUsage},
		{"quota", "each monthly cap: limit, used, reserved, remaining, reset", runQuota},
		{"replicas", "the live replicas and whether the latest change is in force on each", runReplicas},
		{"org", "sync the organization from AWS Organizations", runOrg},
		{"billing", "sync the application inference profiles that attribute cost per team in AWS Billing", runBilling},
		{"token", "mint an IAM identity token for the gateway", runToken},
	}
}

// Commands returns the names of the commands Run handles.
func Commands() []string {
	var names []string
	for _, c := range commands() {
		names = append(names, c.name)
	}
	return names
}

// Run executes one admin command; args[0] is its name. Usage and help go to
// env.Stderr; -h prints the command's usage and returns nil. Errors are
// returned, not printed: an admin API error's text is "<code>: <message>"
// followed by one indented line per detail.
func Run(ctx context.Context, args []string, env Env) error {
	env.defaults()
	if len(args) == 0 {
		return errors.New("no command given; one of " + strings.Join(Commands(), ", "))
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(ctx, args[1:], env)
		}
	}
	return fmt.Errorf("unknown command %q; one of %s", args[0], strings.Join(Commands(), ", "))
}

// errHelp is returned by parse after -h printed the usage; commands turn it
// into success.
var errHelp = flag.ErrHelp

// UsageError is a command line the command cannot run: an unknown flag or
// subcommand, a missing or extra argument. Its text is one line naming the
// command, then a hint to run the command's -h; the caller prints it and exits
// with the usage exit code (2).
type UsageError struct {
	// Cmd is the command as typed, e.g. "gateway entitlements list".
	Cmd string
	// Msg is the problem, starting with Cmd.
	Msg string
}

func (e *UsageError) Error() string {
	return e.Msg + "\nrun '" + e.Cmd + " -h' for usage"
}

// commonFlags are the flags every command has.
type commonFlags struct {
	fs       *flag.FlagSet
	adminURL string
	output   string
	// formats are the values --output accepts; none means no --output.
	formats []string
}

// Output formats of -o/--output: one convention for every verb.
const (
	outTable = "table"
	outJSON  = "json"
	outYAML  = "yaml"
	outCSV   = "csv"
)

var (
	// readFormats are those of the verbs that list rows.
	readFormats = []string{outTable, outJSON, outYAML, outCSV}
	// objectFormats are those of the verbs that show one object or the
	// result of a change, which have no rows for CSV.
	objectFormats = []string{outTable, outJSON, outYAML}
)

// newFlags returns a flag set with the common flags; formats, when given, adds
// -o/--output accepting them (the first is the default).
func newFlags(name, synopsis string, env Env, formats []string) (*flag.FlagSet, *commonFlags) {
	fs := flag.NewFlagSet("gateway "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c := &commonFlags{fs: fs, formats: formats}
	def := env.Getenv(EnvAdminURL)
	if def == "" {
		def = defaultAdminURL
	}
	fs.StringVar(&c.adminURL, "admin-url", def, "admin API base URL (default from "+EnvAdminURL+"); the token comes from "+EnvAdminToken)
	if len(formats) > 0 {
		c.output = formats[0]
		help := "output format: " + orList(formats)
		fs.StringVar(&c.output, "output", c.output, help)
		fs.StringVar(&c.output, "o", c.output, "same as --output")
	}
	fs.Usage = func() {
		w := env.Stderr
		fmt.Fprintf(w, "Usage: gateway %s\n\nFlags:\n", synopsis)
		fs.SetOutput(w)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
	return fs, c
}

// parse parses flags anywhere among the positional arguments (flag stops at
// the first positional one, so parse resumes after it). "--" ends the flags.
// On -h it prints the usage and returns errHelp; on a bad flag it prints
// nothing and returns a one-line *UsageError (with a did-you-mean for a
// misspelt flag), not the whole usage.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	usage := fs.Usage
	fs.Usage = func() {}
	defer func() { fs.Usage = usage }()
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				usage()
				return nil, errHelp
			}
			return nil, flagError(fs, err)
		}
		rest := fs.Args()
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// flagError turns an error of fs.Parse into a one-line usage error.
func flagError(fs *flag.FlagSet, err error) error {
	var names []string
	fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
	return FlagError(fs.Name(), err, names)
}

// FlagError turns an error of flag parsing for cmd (such as "gateway serve")
// into a one-line *UsageError; an unknown flag gets the closest of the flag
// names as a suggestion.
func FlagError(cmd string, err error, names []string) *UsageError {
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: -"); ok {
		msg = "unknown flag " + dashed(name)
		if s := Suggest(name, names); s != "" {
			msg += " (did you mean " + dashed(s) + "?)"
		}
	}
	return &UsageError{Cmd: cmd, Msg: cmd + ": " + msg}
}

// dashed spells a flag name as it is documented: -f, --output.
func dashed(name string) string {
	if len(name) == 1 {
		return "-" + name
	}
	return "--" + name
}

// Suggest returns the candidate closest to s when it is close enough to be
// a likely misspelling (or s is a prefix of it), else "".
func Suggest(s string, candidates []string) string { return suggest.Closest(s, candidates) }

// done maps errHelp to success.
func done(err error) error {
	if errors.Is(err, errHelp) {
		return nil
	}
	return err
}

func (c *commonFlags) checkOutput() error {
	if len(c.formats) == 0 || slices.Contains(c.formats, c.output) {
		return nil
	}
	return usageError(c.fs, "%s: --output %q must be %s", strings.TrimPrefix(c.fs.Name(), "gateway "), c.output, orList(c.formats))
}

func orList(items []string) string {
	if len(items) < 2 {
		return strings.Join(items, "")
	}
	return strings.Join(items[:len(items)-1], ", ") + " or " + items[len(items)-1]
}

// client returns an admin API client for the common flags.
func (c *commonFlags) client(env Env) (*client, error) {
	if err := c.checkOutput(); err != nil {
		return nil, err
	}
	u, err := url.Parse(strings.TrimRight(c.adminURL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usageError(c.fs, "--admin-url %q must be an http:// or https:// URL", c.adminURL)
	}
	token := strings.TrimSpace(env.Getenv(EnvAdminToken))
	if token == "" {
		return nil, errors.New(EnvAdminToken + " is not set: export the gateway's admin token (it is never taken on the command line)")
	}
	return &client{base: u.String(), token: token, http: env.HTTPClient}, nil
}

// usageError returns a one-line *UsageError for fs's command; the message is
// prefixed with "gateway " when it does not start so.
func usageError(fs *flag.FlagSet, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if !strings.HasPrefix(msg, "gateway ") {
		msg = "gateway " + msg
	}
	return &UsageError{Cmd: fs.Name(), Msg: msg}
}

// group is a command made of subcommands (entitlements, shares,
// credentials).
type group struct {
	name  string // e.g. "entitlements"
	usage string // printed for -h and when no subcommand is given
	subs  []sub
}

type sub struct {
	names []string // the name and its aliases
	run   func(ctx context.Context, args []string, env Env) error
}

// run dispatches args to a subcommand. -h prints the group's usage; an
// unknown subcommand is a one-line usage error with a suggestion.
func (g group) run(ctx context.Context, args []string, env Env) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "-help" || args[0] == "help" {
		fmt.Fprint(env.Stderr, "Usage: gateway "+g.usage)
		if len(args) == 0 {
			return &UsageError{Cmd: "gateway " + g.name, Msg: "gateway " + g.name + ": a subcommand is required"}
		}
		return nil
	}
	var names []string
	for _, s := range g.subs {
		if slices.Contains(s.names, args[0]) {
			return s.run(ctx, args[1:], env)
		}
		names = append(names, s.names[0])
	}
	msg := fmt.Sprintf("gateway %s: unknown subcommand %q", g.name, args[0])
	if s := Suggest(args[0], names); s != "" {
		msg += " (did you mean " + s + "?)"
	} else {
		msg += "; one of " + strings.Join(names, ", ")
	}
	return &UsageError{Cmd: "gateway " + g.name, Msg: msg}
}
