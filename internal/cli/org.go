package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/bedrock-gateway/gateway/internal/orgsync"
	"github.com/bedrock-gateway/gateway/internal/state"
)

var orgGroup = group{
	name: "org",
	usage: `org <subcommand> [flags]

Subcommands:
  sync   read the organization from AWS Organizations and show (--apply: write) the difference
`,
	subs: []sub{{[]string{"sync"}, runOrgSync}},
}

func runOrg(ctx context.Context, args []string, env Env) error { return orgGroup.run(ctx, args, env) }

// orgSyncResult is what -o json and -o yaml print.
type orgSyncResult struct {
	orgsync.Plan
	Applied bool `json:"applied"`
}

func runOrgSync(ctx context.Context, args []string, env Env) error {
	fs, common := newFlags("org sync", "org sync [--apply] [--prune] [--team-tag KEY] [--region R] [--organizations-endpoint URL] [flags]\n\n"+
		"Reads the organization (OUs, accounts, their state and team tag) from AWS Organizations with\n"+
		"the standard AWS credential chain (environment, profile, SSO, instance or pod role: the hub's\n"+
		"or a delegated administrator's) and shows how the gateway's organization differs. --apply\n"+
		"writes it through the admin API. OUs and accounts gone from AWS that shares, scopes or\n"+
		"credentials still name are kept and reported; --prune removes them too, with those shares,\n"+
		"scope entries and credentials. Suspended and closed accounts are reported and their records\n"+
		"kept; their access is not removed by the sync.", env, objectFormats)
	apply := fs.Bool("apply", false, "write the new organization (default: only show the difference)")
	prune := fs.Bool("prune", false, "also remove OUs and accounts gone from AWS that are still in use, with their shares and credentials")
	endpoint := fs.String("organizations-endpoint", "", "Organizations API endpoint URL (default: AWS's; the simulator, a VPC endpoint)")
	teamTag := fs.String("team-tag", orgsync.DefaultTeamTag, "account tag holding the team; untagged accounts keep their team")
	region := fs.String("region", "", "AWS region for signing (default from the AWS config, else us-east-1: Organizations is global)")
	pos, err := parse(fs, args)
	if err != nil {
		return done(err)
	}
	if len(pos) > 0 {
		return usageError(fs, "org sync: unexpected argument %q", pos[0])
	}
	if *endpoint != "" {
		if u, err := url.Parse(*endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return usageError(fs, "org sync: --organizations-endpoint %q must be an http:// or https:// URL", *endpoint)
		}
	}
	if *teamTag == "" || len(*teamTag) > 128 {
		return usageError(fs, "org sync: --team-tag must be 1 to 128 characters")
	}
	c, err := common.client(env)
	if err != nil {
		return err
	}
	cfg, err := awsConfig(ctx, env, *region)
	if err != nil {
		return err
	}
	snap, err := orgsync.Read(ctx, orgsync.Options{Client: orgsync.NewClient(cfg, *endpoint), TeamTag: *teamTag})
	if err != nil {
		return fmt.Errorf("reading AWS Organizations: %w", err)
	}
	var cur struct {
		Organization state.Organization `json:"organization"`
	}
	if _, err := c.getJSON(ctx, "/admin/v1/organization", nil, &cur); err != nil {
		return err
	}
	inUse, err := referencesOutsideOrg(ctx, c)
	if err != nil {
		return err
	}
	plan := orgsync.NewPlan(cur.Organization, snap, orgsync.PlanOptions{Prune: *prune, InUse: inUse})
	res := orgSyncResult{Plan: *plan}
	if *apply && len(plan.Changes) > 0 {
		q := url.Values{"force": {strconv.FormatBool(*prune)}}
		if _, err := c.sendJSON(ctx, http.MethodPut, "/admin/v1/organization", q, plan.Organization, nil); err != nil {
			return fmt.Errorf("writing the organization: %w", err)
		}
		res.Applied = true
	}
	if common.output != outTable {
		raw, err := json.Marshal(res)
		if err != nil {
			return err
		}
		_, err = common.printRaw(env.Stdout, raw)
		return err
	}
	printOrgPlan(env.Stdout, &res, *apply)
	return nil
}

// awsConfig loads the standard AWS configuration. Static keys in the
// command's environment are used first, as the SDK's own chain would, so a
// caller that passes its environment explicitly (tests) is honoured.
func awsConfig(ctx context.Context, env Env, region string) (aws.Config, error) {
	return awsConfigWith(ctx, env, region, true)
}

// awsConfigWith is awsConfig with more load options; envKeys false leaves
// out the environment's static keys (an explicit profile wins over them, as
// in the SDK's own chain).
func awsConfigWith(ctx context.Context, env Env, region string, envKeys bool, opts ...func(*config.LoadOptions) error) (aws.Config, error) {
	if region == "" {
		// As the SDK reads it, but from the command's environment; without a
		// region the SDK would ask the EC2 instance metadata service.
		region = env.Getenv("AWS_REGION")
	}
	if region != "" {
		opts = append(opts, config.WithRegion(region))
	}
	if id, secret := env.Getenv("AWS_ACCESS_KEY_ID"), env.Getenv("AWS_SECRET_ACCESS_KEY"); envKeys && id != "" && secret != "" {
		opts = append(opts, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(id, secret, env.Getenv("AWS_SESSION_TOKEN"))))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("loading the AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	return cfg, nil
}

// referencesOutsideOrg returns what names an ID among the entitlements'
// shares and scopes and the credentials (not the organization's own tree),
// from the gateway's exported state.
func referencesOutsideOrg(ctx context.Context, c *client) (func(string) []string, error) {
	body, err := c.do(ctx, request{method: http.MethodGet, path: "/admin/v1/export"}, nil)
	if err != nil {
		return nil, fmt.Errorf("reading the gateway's shares and credentials: %w", err)
	}
	st, err := state.Parse(body)
	if err != nil {
		return nil, fmt.Errorf("reading the gateway's shares and credentials: %w", err)
	}
	st.Organization = state.Organization{}
	return st.References, nil
}

func printOrgPlan(w io.Writer, res *orgSyncResult, apply bool) {
	sym := map[string]string{orgsync.OpAdd: "+", orgsync.OpRemove: "-", orgsync.OpUpdate: "~", orgsync.OpKeep: "=", orgsync.OpInactive: "!"}
	line := func(c orgsync.Change) {
		s := sym[c.Op] + " " + c.Kind + " " + c.ID
		if c.Detail != "" {
			s += ": " + c.Detail
		}
		fmt.Fprintln(w, s)
	}
	for _, c := range res.Changes {
		line(c)
	}
	for _, c := range res.Kept {
		line(c)
	}
	if len(res.Kept) > 0 {
		fmt.Fprintln(w, "kept: still in use; remove their shares and credentials first, or sync with --apply --prune")
	}
	for _, c := range res.Inactive {
		line(c)
	}
	if len(res.Inactive) > 0 {
		fmt.Fprintln(w, "inactive accounts keep their records, shares and credentials; the gateway denies them every call (deny reason account_inactive) until AWS reports them ACTIVE again")
	}
	o := res.Organization
	summary := fmt.Sprintf("organization %s: %s, %s", o.ID, plural(len(o.Units), "OU"), plural(len(o.Accounts), "account"))
	switch {
	case len(res.Changes) == 0:
		fmt.Fprintf(w, "%s; no changes\n", summary)
	case res.Applied:
		fmt.Fprintf(w, "%s; applied %s\n", summary, plural(len(res.Changes), "change"))
	case !apply:
		fmt.Fprintf(w, "%s; %s not applied (run with --apply)\n", summary, plural(len(res.Changes), "change"))
	}
}
