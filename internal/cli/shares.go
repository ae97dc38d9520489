package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/bedrock-gateway/gateway/internal/state"
)

const sharesUsage = `shares <subcommand> [flags]

Subcommands:
  add ENTITLEMENT TARGET... [--monthly-tokens N]   share with accounts, OUs or the organization
  add ENTITLEMENT --csv FILE [--monthly-tokens N]  share with every target of a CSV file: one target per
                                                   line, optional header, optional second column
                                                   monthly_tokens; nothing is applied if any row is bad
  remove ENTITLEMENT TARGET...                     revoke shares (in force on return)
  list ENTITLEMENT                                 show the shares

Run "gateway shares <subcommand> -h" for its flags.
`

func runShares(ctx context.Context, args []string, env Env) error {
	return group{name: "shares", usage: sharesUsage, subs: []sub{
		{[]string{"add"}, sharesAdd},
		{[]string{"remove", "rm"}, sharesRemove},
		{[]string{"list", "ls"}, sharesList},
	}}.run(ctx, args, env)
}

type sharesResult struct {
	Entitlement string        `json:"entitlement"`
	Shares      []state.Share `json:"shares"`
}

func sharesAdd(ctx context.Context, args []string, env Env) error {
	fs, common := newFlags("shares add", "shares add ENTITLEMENT TARGET... [flags]\n       gateway shares add ENTITLEMENT --csv FILE [flags]", env, objectFormats)
	csvFile := fs.String("csv", "", "CSV file of targets (account, OU, organization or root IDs), one per line")
	monthly := fs.Int64("monthly-tokens", 0, "the shares' own monthly token cap (0: none); a CSV second column overrides it")
	pos, err := parse(fs, args)
	if err != nil {
		return done(err)
	}
	switch {
	case len(pos) == 0:
		return usageError(fs, "shares add: ENTITLEMENT is required")
	case *csvFile != "" && len(pos) > 1:
		return usageError(fs, "shares add: give TARGETs or --csv FILE, not both")
	case *csvFile == "" && len(pos) < 2:
		return usageError(fs, "shares add: give at least one TARGET, or --csv FILE")
	case *monthly < 0:
		return usageError(fs, "shares add: --monthly-tokens must not be negative")
	}
	c, err := common.client(env)
	if err != nil {
		return err
	}
	path := "/admin/v1/entitlements/" + pathEscape(pos[0]) + "/shares"
	var res sharesResult
	var raw []byte
	if *csvFile != "" {
		data, err := readFile(*csvFile)
		if err != nil {
			return err
		}
		q := url.Values{}
		if *monthly > 0 {
			q.Set("monthly_tokens", strconv.FormatInt(*monthly, 10))
		}
		raw, err = c.do(ctx, request{method: http.MethodPost, path: path, query: q, contentType: "text/csv", body: data}, &res)
		if err != nil {
			return err
		}
	} else {
		body := struct {
			Targets       []string `json:"targets"`
			MonthlyTokens int64    `json:"monthly_tokens,omitempty"`
		}{pos[1:], *monthly}
		raw, err = c.sendJSON(ctx, http.MethodPost, path, nil, body, &res)
		if err != nil {
			return err
		}
	}
	if ok, err := common.printRaw(env.Stdout, raw); ok {
		return err
	}
	fmt.Fprintf(env.Stdout, "entitlement %s:", res.Entitlement)
	printShares(env.Stdout, res.Shares)
	return nil
}

func sharesRemove(ctx context.Context, args []string, env Env) error {
	fs, common := newFlags("shares remove", "shares remove ENTITLEMENT TARGET... [flags]", env, nil)
	pos, err := parse(fs, args)
	if err != nil {
		return done(err)
	}
	if len(pos) < 2 {
		return usageError(fs, "shares remove: ENTITLEMENT and at least one TARGET are required")
	}
	c, err := common.client(env)
	if err != nil {
		return err
	}
	for i, target := range pos[1:] {
		path := "/admin/v1/entitlements/" + pathEscape(pos[0]) + "/shares/" + pathEscape(target)
		if _, err := c.do(ctx, request{method: http.MethodDelete, path: path}, nil); err != nil {
			if i > 0 {
				return fmt.Errorf("removing share %s (the targets before it were removed): %w", target, err)
			}
			return err
		}
		fmt.Fprintf(env.Stdout, "removed share of %s with %s\n", pos[0], target)
	}
	return nil
}

func sharesList(ctx context.Context, args []string, env Env) error {
	fs, common := newFlags("shares list", "shares list ENTITLEMENT [flags]", env, readFormats)
	pos, err := parse(fs, args)
	if err != nil {
		return done(err)
	}
	if len(pos) != 1 {
		return usageError(fs, "shares list: exactly one ENTITLEMENT is required")
	}
	c, err := common.client(env)
	if err != nil {
		return err
	}
	var res struct {
		Entitlement state.Entitlement `json:"entitlement"`
	}
	if _, err := c.getJSON(ctx, "/admin/v1/entitlements/"+pathEscape(pos[0]), nil, &res); err != nil {
		return err
	}
	raw, err := json.Marshal(sharesResult{Entitlement: res.Entitlement.Name, Shares: nonNilShares(res.Entitlement.Shares)})
	if err != nil {
		return err
	}
	if ok, err := common.printRaw(env.Stdout, raw); ok {
		return err
	}
	if common.output == outCSV {
		t := table{header: []string{"TARGET", "MONTHLY_TOKENS"}}
		for _, s := range res.Entitlement.Shares {
			t.rows = append(t.rows, []any{s.Target, tokens(s.MonthlyTokens)})
		}
		return common.printRows(env.Stdout, t)
	}
	fmt.Fprintf(env.Stdout, "entitlement %s:", res.Entitlement.Name)
	printShares(env.Stdout, res.Entitlement.Shares)
	return nil
}

func nonNilShares(s []state.Share) []state.Share {
	if s == nil {
		return []state.Share{}
	}
	return s
}
