package cli

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"

	"github.com/bedrock-gateway/gateway/internal/state"
)

type applyResult struct {
	Changes  []state.Change `json:"changes"`
	Applied  bool           `json:"applied"`
	DryRun   bool           `json:"dry_run"`
	Version  uint64         `json:"version"`
	Warnings []string       `json:"warnings,omitempty"`
}

func runApply(ctx context.Context, args []string, env Env) error {
	fs, common := newFlags("apply", "apply -f FILE [--dry-run] [--prune] [flags]\n\n"+
		"Makes the gateway's state match a state file (YAML or JSON). secret_env and key_env are\n"+
		"read from this shell's environment; only the resolved secret (or an API key's SHA-256)\n"+
		"is sent. Without --prune, entitlements and credentials missing from the file are kept.", env, objectFormats)
	file := fs.String("f", "", "state file (YAML or JSON)")
	fs.StringVar(file, "file", "", "same as -f")
	dryRun := fs.Bool("dry-run", false, "show the changes without making them")
	prune := fs.Bool("prune", false, "also delete entitlements and credentials the file does not list")
	pos, err := parse(fs, args)
	if err != nil {
		return done(err)
	}
	if len(pos) > 0 {
		return usageError(fs, "apply: unexpected argument %q (the file is given with -f)", pos[0])
	}
	if *file == "" {
		return usageError(fs, "apply: -f FILE is required")
	}
	st, err := state.LoadFile(*file)
	if err != nil {
		return err
	}
	if err := st.ResolveSecrets(env.LookupEnv); err != nil {
		return fmt.Errorf("resolving the state file's secrets: %w", err)
	}
	body, err := state.Marshal(st)
	if err != nil {
		return err
	}
	c, err := common.client(env)
	if err != nil {
		return err
	}
	q := url.Values{"dry_run": {strconv.FormatBool(*dryRun)}, "prune": {strconv.FormatBool(*prune)}}
	var res applyResult
	raw, err := c.do(ctx, request{method: http.MethodPost, path: "/admin/v1/apply", query: q,
		contentType: "application/yaml", body: body}, &res)
	if err != nil {
		return err
	}
	for _, w := range res.Warnings {
		fmt.Fprintln(env.Stderr, "gateway apply: warning: "+w)
	}
	if ok, err := common.printRaw(env.Stdout, raw); ok {
		return err
	}
	printChanges(env.Stdout, res.Changes)
	switch {
	case len(res.Changes) == 0:
		fmt.Fprintf(env.Stdout, "no changes (version %d)\n", res.Version)
	case res.DryRun:
		fmt.Fprintf(env.Stdout, "dry run: %s would be applied; nothing was changed\n", plural(len(res.Changes), "change"))
	default:
		fmt.Fprintf(env.Stdout, "applied %s (version %d)\n", plural(len(res.Changes), "change"), res.Version)
	}
	return nil
}

// printChanges writes changes as a diff: "+ entitlement x", "~ share x/y: ...",
// "- credential z".
func printChanges(w io.Writer, changes []state.Change) {
	for _, c := range changes {
		line := opSymbol(c.Op) + " " + c.Kind + " " + c.ID
		if c.Detail != "" {
			line += ": " + c.Detail
		}
		fmt.Fprintln(w, line)
	}
}

func opSymbol(op string) string {
	switch op {
	case state.OpCreate:
		return "+"
	case state.OpDelete:
		return "-"
	case state.OpUpdate:
		return "~"
	}
	return "?"
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.Itoa(n) + " " + what + "s"
}

func readFile(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return data, nil
}
