package cli

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/bedrock-gateway/gateway/internal/state"
)

const credentialsUsage = `credentials <subcommand> [flags]

Subcommands:
  issue --account ID --kind sigv4|api_key --label LABEL [--expires-in 720h]
                             issue a credential; its secret is shown once, here
  list [--account ID]        list credentials (never their secrets)
  revoke ID...               revoke credentials (in force on return)

Run "gateway credentials <subcommand> -h" for its flags.
`

func runCredentials(ctx context.Context, args []string, env Env) error {
	return group{name: "credentials", usage: credentialsUsage, subs: []sub{
		{[]string{"issue"}, credentialsIssue},
		{[]string{"list", "ls"}, credentialsList},
		{[]string{"revoke", "delete", "rm"}, credentialsRevoke},
	}}.run(ctx, args, env)
}

type issued struct {
	Credential      state.Credential `json:"credential"`
	SecretAccessKey string           `json:"secret_access_key"`
	APIKey          string           `json:"api_key"`
	Warnings        []string         `json:"warnings"`
}

func credentialsIssue(ctx context.Context, args []string, env Env) error {
	fs, common := newFlags("credentials issue", "credentials issue --account ID --kind sigv4|api_key --label LABEL [flags]", env, objectFormats)
	account := fs.String("account", "", "member account ID (12 digits)")
	kind := fs.String("kind", state.KindSigV4, "sigv4 (access key ID and secret for any AWS SDK) or api_key (bearer token, AWS_BEARER_TOKEN_BEDROCK)")
	label := fs.String("label", "", "the application the credential is for")
	expiresIn := fs.Duration("expires-in", 0, "lifetime, e.g. 720h (default: never expires)")
	pos, err := parse(fs, args)
	if err != nil {
		return done(err)
	}
	switch {
	case len(pos) > 0:
		return usageError(fs, "credentials issue: unexpected argument %q", pos[0])
	case *account == "":
		return usageError(fs, "credentials issue: --account is required")
	case *label == "":
		return usageError(fs, "credentials issue: --label is required")
	case *kind != state.KindSigV4 && *kind != state.KindAPIKey:
		return usageError(fs, "credentials issue: --kind must be sigv4 or api_key")
	case *expiresIn < 0:
		return usageError(fs, "credentials issue: --expires-in must be positive")
	}
	req := struct {
		Account   string     `json:"account"`
		Kind      string     `json:"kind"`
		Label     string     `json:"label"`
		ExpiresAt *time.Time `json:"expires_at,omitempty"`
	}{Account: *account, Kind: *kind, Label: *label}
	if *expiresIn > 0 {
		t := time.Now().Add(*expiresIn).UTC().Truncate(time.Second)
		req.ExpiresAt = &t
	}
	c, err := common.client(env)
	if err != nil {
		return err
	}
	var res issued
	raw, err := c.sendJSON(ctx, http.MethodPost, "/admin/v1/credentials", nil, req, &res)
	if err != nil {
		return err
	}
	if ok, err := common.printRaw(env.Stdout, raw); ok {
		return err
	}
	printIssued(env.Stdout, env.Stderr, &res)
	return nil
}

func printIssued(out, warn io.Writer, res *issued) {
	cr := &res.Credential
	expires := "never expires"
	if cr.ExpiresAt != nil {
		expires = "expires " + timeText(*cr.ExpiresAt)
	}
	fmt.Fprintf(out, "issued %s credential %s for account %s (label %q, %s)\n\n", cr.Kind, cr.ID, cr.Account, cr.Label, expires)
	fmt.Fprintln(warn, "WARNING: the secret below is shown only now; it cannot be retrieved again. Store it safely.")
	for _, w := range res.Warnings {
		fmt.Fprintln(warn, "WARNING: "+w)
	}
	switch cr.Kind {
	case state.KindSigV4:
		fmt.Fprintf(out, "access key ID:      %s\nsecret access key:  %s\n\n", cr.AccessKeyID, res.SecretAccessKey)
		fmt.Fprintf(out, "export AWS_ACCESS_KEY_ID=%s\nexport AWS_SECRET_ACCESS_KEY=%s\n", cr.AccessKeyID, res.SecretAccessKey)
	case state.KindAPIKey:
		fmt.Fprintf(out, "API key:  %s\n\n", res.APIKey)
		fmt.Fprintf(out, "export AWS_BEARER_TOKEN_BEDROCK=%s\n", res.APIKey)
	}
}

func credentialsList(ctx context.Context, args []string, env Env) error {
	fs, common := newFlags("credentials list", "credentials list [--account ID] [flags]", env, readFormats)
	account := fs.String("account", "", "only the credentials of this account")
	pos, err := parse(fs, args)
	if err != nil {
		return done(err)
	}
	if len(pos) > 0 {
		return usageError(fs, "credentials list: unexpected argument %q", pos[0])
	}
	c, err := common.client(env)
	if err != nil {
		return err
	}
	q := url.Values{}
	if *account != "" {
		q.Set("account", *account)
	}
	var res struct {
		Credentials []state.Credential `json:"credentials"`
	}
	raw, err := c.getJSON(ctx, "/admin/v1/credentials", q, &res)
	if err != nil {
		return err
	}
	if ok, err := common.printRaw(env.Stdout, raw); ok {
		return err
	}
	t := table{header: []string{"ID", "ACCOUNT", "KIND", "LABEL", "CREATED", "EXPIRES"}, empty: "no credentials"}
	for _, cr := range res.Credentials {
		expires := "never"
		if cr.ExpiresAt != nil {
			expires = timeText(*cr.ExpiresAt)
		}
		t.rows = append(t.rows, []any{cr.ID, cr.Account, cr.Kind, cr.Label, cr.CreatedAt, expires})
	}
	return common.printRows(env.Stdout, t)
}

func credentialsRevoke(ctx context.Context, args []string, env Env) error {
	fs, common := newFlags("credentials revoke", "credentials revoke ID... [flags]", env, nil)
	pos, err := parse(fs, args)
	if err != nil {
		return done(err)
	}
	if len(pos) == 0 {
		return usageError(fs, "credentials revoke: at least one credential ID is required")
	}
	c, err := common.client(env)
	if err != nil {
		return err
	}
	for i, id := range pos {
		if _, err := c.do(ctx, request{method: http.MethodDelete, path: "/admin/v1/credentials/" + pathEscape(id)}, nil); err != nil {
			if i > 0 {
				return fmt.Errorf("revoking %s (the credentials before it were revoked): %w", id, err)
			}
			return err
		}
		fmt.Fprintf(env.Stdout, "revoked credential %s\n", id)
	}
	return nil
}
