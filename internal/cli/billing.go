package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/bedrock-gateway/gateway/internal/billing"
	"github.com/bedrock-gateway/gateway/internal/state"
)

var billingGroup = group{
	name: "billing",
	usage: `billing <subcommand> [flags]

Subcommands:
  sync   create, tag and (--prune) delete the application inference profiles entitlements with
         billing.profiles ask for, and record them in the gateway (shows the plan; --apply does it)
`,
	subs: []sub{{[]string{"sync"}, runBillingSync}},
}

func runBilling(ctx context.Context, args []string, env Env) error {
	return billingGroup.run(ctx, args, env)
}

// billingSyncResult is what -o json and -o yaml print.
type billingSyncResult struct {
	billing.Plan
	Applied bool `json:"applied"`
}

// billingProfiles is the admin API's body of /admin/v1/billing/profiles.
type billingProfiles struct {
	Profiles []state.BillingProfile `json:"profiles"`
}

func runBillingSync(ctx context.Context, args []string, env Env) error {
	fs, common := newFlags("billing sync", "billing sync [--apply] [--prune] [--region R] [--bedrock-endpoint URL] [flags]\n\n"+
		"Gives every entitlement with billing.profiles per_team or per_entitlement its application\n"+
		"inference profiles in the hub account (one per team of the accounts its shares cover, or one\n"+
		"for the entitlement), tagged with the entitlement and the team, so that AWS Billing, Cost\n"+
		"Explorer and AWS Budgets can group its cost by them; the gateway then calls a team's profile\n"+
		"instead of the model. It uses the Bedrock control-plane API with the standard AWS credential\n"+
		"chain (the hub's: bedrock:CreateInferenceProfile, GetInferenceProfile, ListInferenceProfiles,\n"+
		"DeleteInferenceProfile, TagResource, ListTagsForResource), shows the plan, and with --apply\n"+
		"carries it out and records the profiles in the gateway through the admin API. Profiles tagged\n"+
		"for an entitlement and team are adopted, never duplicated (after a store loss too). Tagged\n"+
		"profiles nothing wants are listed; --prune deletes them.", env, objectFormats)
	apply := fs.Bool("apply", false, "create, tag and record the profiles (default: only show the plan)")
	prune := fs.Bool("prune", false, "also delete the tagged profiles no entitlement wants")
	endpoint := fs.String("bedrock-endpoint", "", "Bedrock control-plane endpoint URL (default: AWS's, or AWS_ENDPOINT_URL_BEDROCK; a VPC endpoint, the simulator)")
	region := fs.String("region", "", "region of entitlements without their own (the gateway's --region; default from the AWS config, else us-east-1)")
	entTag := fs.String("entitlement-tag", billing.DefaultEntitlementTag, "tag key carrying the entitlement's name")
	teamTag := fs.String("team-tag", billing.DefaultTeamTag, "tag key carrying the team")
	pos, err := parse(fs, args)
	if err != nil {
		return done(err)
	}
	if len(pos) > 0 {
		return usageError(fs, "billing sync: unexpected argument %q", pos[0])
	}
	if *endpoint != "" {
		if u, err := url.Parse(*endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return usageError(fs, "billing sync: --bedrock-endpoint %q must be an http:// or https:// URL", *endpoint)
		}
	}
	for _, k := range []string{*entTag, *teamTag} {
		if k == "" || len(k) > 128 {
			return usageError(fs, "billing sync: tag keys must be 1 to 128 characters")
		}
	}
	if *entTag == *teamTag {
		return usageError(fs, "billing sync: --entitlement-tag and --team-tag must differ")
	}
	c, err := common.client(env)
	if err != nil {
		return err
	}
	cfg, err := awsConfig(ctx, env, *region)
	if err != nil {
		return err
	}
	st, err := exportedState(ctx, c)
	if err != nil {
		return err
	}
	var recorded billingProfiles
	if _, err := c.getJSON(ctx, "/admin/v1/billing/profiles", nil, &recorded); err != nil {
		return err
	}
	plan, wrote, err := billing.Sync(ctx, billing.SyncOptions{
		Clients:  billing.NewClients(cfg, *endpoint),
		Region:   cfg.Region,
		Tags:     billing.TagKeys{Entitlement: *entTag, Team: *teamTag},
		State:    st,
		Recorded: recorded.Profiles,
		Apply:    *apply,
		Prune:    *prune,
		Record: func(ctx context.Context, rs []state.BillingProfile) error {
			_, err := c.sendJSON(ctx, http.MethodPut, "/admin/v1/billing/profiles", nil, billingProfiles{Profiles: rs}, nil)
			return err
		},
	})
	if plan == nil {
		return err
	}
	res := billingSyncResult{Plan: *plan, Applied: wrote}
	if common.output != outTable {
		raw, jerr := json.Marshal(res)
		if jerr != nil {
			return jerr
		}
		if _, perr := common.printRaw(env.Stdout, raw); perr != nil {
			return perr
		}
		return err
	}
	printBillingPlan(env.Stdout, &res, *apply)
	return err
}

// exportedState reads the gateway's state (without secrets) through the
// admin API's export.
func exportedState(ctx context.Context, c *client) (*state.State, error) {
	body, err := c.do(ctx, request{method: http.MethodGet, path: "/admin/v1/export"}, nil)
	if err != nil {
		return nil, fmt.Errorf("reading the gateway's entitlements: %w", err)
	}
	st, err := state.Parse(body)
	if err != nil {
		return nil, fmt.Errorf("reading the gateway's entitlements: %w", err)
	}
	return st, nil
}

func printBillingPlan(w io.Writer, res *billingSyncResult, apply bool) {
	sym := map[string]string{billing.OpCreate: "+", billing.OpAdopt: "~", billing.OpTag: "~", billing.OpDelete: "-",
		billing.OpForget: "-", billing.OpKeep: "=", billing.OpUnused: "!"}
	line := func(c billing.Change) {
		who := c.Entitlement
		if c.Team != "" {
			who += " team " + c.Team
		}
		s := sym[c.Op] + " " + c.Op + " " + who
		if c.Region != "" {
			s += " (" + c.Region + ")"
		}
		switch {
		case c.ARN != "":
			s += ": " + c.ARN
		case c.Name != "":
			s += ": " + c.Name + " copying " + c.Source
		}
		if c.Detail != "" {
			s += " (" + c.Detail + ")"
		}
		fmt.Fprintln(w, s)
	}
	for _, c := range res.Changes {
		line(c)
	}
	for _, c := range res.Kept {
		line(c)
	}
	for _, c := range res.Unused {
		line(c)
	}
	if len(res.Unused) > 0 {
		fmt.Fprintln(w, "unused: tagged by the gateway, wanted by no entitlement; delete them with --apply --prune")
	}
	summary := plural(len(res.Records), "profile") + " wanted"
	switch {
	case len(res.Changes) == 0:
		fmt.Fprintf(w, "%s; no changes\n", summary)
	case res.Applied:
		fmt.Fprintf(w, "%s; applied %s\n", summary, plural(len(res.Changes), "change"))
	case !apply:
		fmt.Fprintf(w, "%s; %s not applied (run with --apply)\n", summary, plural(len(res.Changes), "change"))
	default:
		fmt.Fprintf(w, "%s; %s not applied\n", summary, plural(len(res.Changes), "change"))
	}
}
