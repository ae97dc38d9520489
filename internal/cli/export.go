package cli

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strconv"
)

func runExport(ctx context.Context, args []string, env Env) error {
	fs, common := newFlags("export", "export [-o FILE] [--include-secrets] [flags]\n\n"+
		"Writes the gateway's whole state (organization, entitlements with shares and limits,\n"+
		"credentials) as a state file that `gateway apply -f FILE --prune` restores. SigV4 secrets\n"+
		"are included only with --include-secrets (the file is then as sensitive as the store;\n"+
		"it is written with mode 0600); API keys are only ever kept as SHA-256.", env, false)
	out := fs.String("o", "", "write to this file instead of standard output")
	withSecrets := fs.Bool("include-secrets", false, "include SigV4 secret access keys (needed to restore into an empty store)")
	pos, err := parse(fs, args)
	if err != nil {
		return done(err)
	}
	if len(pos) > 0 {
		return usageError(fs, "export: unexpected argument %q", pos[0])
	}
	c, err := common.client(env)
	if err != nil {
		return err
	}
	body, err := c.do(ctx, request{method: http.MethodGet, path: "/admin/v1/export",
		query: url.Values{"include_secrets": {strconv.FormatBool(*withSecrets)}}}, nil)
	if err != nil {
		return err
	}
	if *out == "" {
		_, err = env.Stdout.Write(body)
		return err
	}
	if err := os.WriteFile(*out, body, 0o600); err != nil {
		return fmt.Errorf("writing %s: %w", *out, err)
	}
	fmt.Fprintf(env.Stderr, "state written to %s\n", *out)
	return nil
}
