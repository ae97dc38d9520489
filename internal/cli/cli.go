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
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
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
		{"entitlements", "list | get | create | delete managed entitlements", runEntitlements},
		{"shares", "add | remove | list the shares of an entitlement", runShares},
		{"credentials", "issue | list | revoke member credentials", runCredentials},
		{"audit", "show the audit log", runAudit},
		{"export", "write the whole state as a state file", runExport},
		{"usage", "the monthly usage report", runUsage},
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

// commonFlags are the flags every command has.
type commonFlags struct {
	adminURL string
	output   string
}

// newFlags returns a flag set with the common flags; withOutput adds --output.
func newFlags(name, synopsis string, env Env, withOutput bool) (*flag.FlagSet, *commonFlags) {
	fs := flag.NewFlagSet("gateway "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c := &commonFlags{}
	def := env.Getenv(EnvAdminURL)
	if def == "" {
		def = defaultAdminURL
	}
	fs.StringVar(&c.adminURL, "admin-url", def, "admin API base URL (default from "+EnvAdminURL+"); the token comes from "+EnvAdminToken)
	if withOutput {
		fs.StringVar(&c.output, "output", "table", "output format: table or json")
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
// On a flag error the usage is printed (by flag) and the error returned; on
// -h, errHelp.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			// flag has already printed the usage.
			if errors.Is(err, flag.ErrHelp) {
				return nil, errHelp
			}
			return nil, err
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

// done maps errHelp to success.
func done(err error) error {
	if errors.Is(err, errHelp) {
		return nil
	}
	return err
}

func (c *commonFlags) checkOutput() error {
	switch c.output {
	case "", "table", "json":
		return nil
	}
	return fmt.Errorf("--output %q must be table or json", c.output)
}

func (c *commonFlags) json() bool { return c.output == "json" }

// client returns an admin API client for the common flags.
func (c *commonFlags) client(env Env) (*client, error) {
	if err := c.checkOutput(); err != nil {
		return nil, err
	}
	u, err := url.Parse(strings.TrimRight(c.adminURL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("--admin-url %q must be an http:// or https:// URL", c.adminURL)
	}
	token := strings.TrimSpace(env.Getenv(EnvAdminToken))
	if token == "" {
		return nil, errors.New(EnvAdminToken + " is not set: export the gateway's admin token (it is never taken on the command line)")
	}
	return &client{base: u.String(), token: token, http: env.HTTPClient}, nil
}

func usageError(fs *flag.FlagSet, format string, args ...any) error {
	fs.Usage()
	return fmt.Errorf(format, args...)
}
