package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"

	"github.com/bedrock-gateway/gateway/internal/state"
)

func runExport(ctx context.Context, args []string, env Env) error {
	fs, common := newFlags("export", "export [--file FILE] [-o yaml|json] [--include-secrets] [flags]\n\n"+
		"Writes the gateway's whole state (organization, entitlements with shares and limits,\n"+
		"credentials, revoked keys) as a state file that `gateway apply -f FILE --prune` restores.\n"+
		"SigV4 secrets are included only with --include-secrets (the file is then as sensitive as\n"+
		"the store); API keys are only ever kept as SHA-256. --file writes a new file with mode\n"+
		"0600 and renames it over FILE, so an existing file's wider mode never applies.", env, nil)
	file := fs.String("file", "", "write to this file (mode 0600, replaced atomically) instead of standard output")
	format := "yaml"
	fs.StringVar(&format, "o", format, "output format: yaml or json (both are state files apply reads)")
	fs.StringVar(&format, "output", format, "same as -o")
	withSecrets := fs.Bool("include-secrets", false, "include SigV4 secret access keys (needed to restore into an empty store)")
	pos, err := parse(fs, args)
	if err != nil {
		return done(err)
	}
	if len(pos) > 0 {
		return usageError(fs, "export: unexpected argument %q", pos[0])
	}
	if format != "yaml" && format != "json" {
		// -o named the file before it named the format: say what changed.
		return usageError(fs, "export: -o %q must be yaml or json (write to a file with --file FILE)", format)
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
	if format == "json" {
		if body, err = yamlToJSON(body); err != nil {
			return err
		}
	}
	if *file == "" {
		_, err = env.Stdout.Write(body)
		return err
	}
	if err := writePrivate(*file, body); err != nil {
		return err
	}
	fmt.Fprintf(env.Stderr, "state written to %s\n", *file)
	return nil
}

// yamlToJSON re-encodes an exported state file as JSON, which apply reads too.
func yamlToJSON(body []byte) ([]byte, error) {
	st, err := state.Parse(body)
	if err != nil {
		return nil, fmt.Errorf("reading the exported state: %w", err)
	}
	out, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encoding the state as JSON: %w", err)
	}
	return append(out, '\n'), nil
}

// writePrivate writes data to a new file of mode 0600 beside path and renames
// it over path: os.WriteFile would keep the mode of an existing file (say
// 0644), and a reader would never see half a file.
func writePrivate(path string, data []byte) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			_ = os.Remove(tmp.Name())
		}
	}()
	// CreateTemp makes the file 0600; say so rather than rely on it.
	if err := tmp.Chmod(0o600); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	_, werr := tmp.Write(data)
	if werr == nil {
		werr = tmp.Sync()
	}
	if err := errors.Join(werr, tmp.Close()); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
