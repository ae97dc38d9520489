package cli

import (
	"context"
	"fmt"
	"net/http"

	"github.com/bedrock-gateway/gateway/internal/state"
)

const principalsUsage = `principals <subcommand> [flags]

The principal deny list: IAM roles and users (callers with IAM identity
tokens) refused outright, like a revoked key, on every replica within a
second. PATTERN is arn:aws:iam::<account>:role/<name> or user/<name>, with *
wildcards in the name; an assumed-role session matches as its role.

Subcommands:
  deny PATTERN...            refuse the principals (in force on return)
  allow PATTERN...           take patterns off the deny list
  list                       list the deny list

Run "gateway principals <subcommand> -h" for its flags.
`

func runPrincipals(ctx context.Context, args []string, env Env) error {
	return group{name: "principals", usage: principalsUsage, subs: []sub{
		{[]string{"deny"}, principalsDeny},
		{[]string{"allow"}, principalsAllow},
		{[]string{"list", "ls"}, principalsList},
	}}.run(ctx, args, env)
}

func principalsDeny(ctx context.Context, args []string, env Env) error {
	fs, common := newFlags("principals deny", "principals deny PATTERN... [flags]", env, nil)
	pos, err := parse(fs, args)
	if err != nil {
		return done(err)
	}
	if len(pos) == 0 {
		return usageError(fs, "principals deny: at least one principal pattern is required")
	}
	// Checked here too, so a typo among several patterns denies none.
	for _, p := range pos {
		if err := state.CheckPrincipalPattern(p); err != nil {
			return usageError(fs, "principals deny: %v", err)
		}
	}
	c, err := common.client(env)
	if err != nil {
		return err
	}
	for i, p := range pos {
		if _, err := c.sendJSON(ctx, http.MethodPost, "/admin/v1/denied-principals", nil, map[string]string{"principal": p}, nil); err != nil {
			if i > 0 {
				return fmt.Errorf("denying %s (the patterns before it were denied): %w", p, err)
			}
			return err
		}
		fmt.Fprintf(env.Stdout, "denied principal %s\n", p)
	}
	return nil
}

func principalsAllow(ctx context.Context, args []string, env Env) error {
	fs, common := newFlags("principals allow", "principals allow PATTERN... [flags]", env, nil)
	pos, err := parse(fs, args)
	if err != nil {
		return done(err)
	}
	if len(pos) == 0 {
		return usageError(fs, "principals allow: at least one principal pattern is required")
	}
	c, err := common.client(env)
	if err != nil {
		return err
	}
	for i, p := range pos {
		if _, err := c.do(ctx, request{method: http.MethodDelete, path: "/admin/v1/denied-principals/" + pathEscape(p)}, nil); err != nil {
			if i > 0 {
				return fmt.Errorf("allowing %s (the patterns before it were allowed): %w", p, err)
			}
			return err
		}
		fmt.Fprintf(env.Stdout, "allowed principal %s\n", p)
	}
	return nil
}

func principalsList(ctx context.Context, args []string, env Env) error {
	fs, common := newFlags("principals list", "principals list [flags]", env, readFormats)
	pos, err := parse(fs, args)
	if err != nil {
		return done(err)
	}
	if len(pos) > 0 {
		return usageError(fs, "principals list: unexpected argument %q", pos[0])
	}
	c, err := common.client(env)
	if err != nil {
		return err
	}
	var res struct {
		DeniedPrincipals []string `json:"denied_principals"`
	}
	raw, err := c.getJSON(ctx, "/admin/v1/denied-principals", nil, &res)
	if err != nil {
		return err
	}
	if ok, err := common.printRaw(env.Stdout, raw); ok {
		return err
	}
	t := table{header: []string{"DENIED PRINCIPAL"}, empty: "no denied principals"}
	for _, p := range res.DeniedPrincipals {
		t.rows = append(t.rows, []any{p})
	}
	return common.printRows(env.Stdout, t)
}
