package cli

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/bedrock-gateway/gateway/internal/state"
)

const entitlementsUsage = `entitlements <subcommand> [flags]

Subcommands:
  list                         list every entitlement
  get NAME                     show one entitlement and its shares
  create -f FILE               create one from a YAML or JSON file of one entitlement
  create NAME --model MODEL [--scope ID,...] [--monthly-tokens N] ...
  update NAME [--monthly-tokens N] [--scope ID,...] [--operations OP,...] [--description TEXT] ...
                               change only the fields given (other limits are kept)
  delete NAME                  delete one (its shares go with it)

Run "gateway entitlements <subcommand> -h" for its flags.
`

func runEntitlements(ctx context.Context, args []string, env Env) error {
	return group{name: "entitlements", usage: entitlementsUsage, subs: []sub{
		{[]string{"list", "ls"}, entitlementsList},
		{[]string{"get", "show"}, entitlementsGet},
		{[]string{"create"}, entitlementsCreate},
		{[]string{"update", "set"}, entitlementsUpdate},
		{[]string{"delete", "rm"}, entitlementsDelete},
	}}.run(ctx, args, env)
}

func entitlementsList(ctx context.Context, args []string, env Env) error {
	fs, common := newFlags("entitlements list", "entitlements list [flags]", env, readFormats)
	pos, err := parse(fs, args)
	if err != nil {
		return done(err)
	}
	if len(pos) > 0 {
		return usageError(fs, "entitlements list: unexpected argument %q", pos[0])
	}
	c, err := common.client(env)
	if err != nil {
		return err
	}
	var res struct {
		Entitlements []state.Entitlement `json:"entitlements"`
	}
	raw, err := c.getJSON(ctx, "/admin/v1/entitlements", nil, &res)
	if err != nil {
		return err
	}
	if ok, err := common.printRaw(env.Stdout, raw); ok {
		return err
	}
	t := table{header: []string{"NAME", "MODEL", "STATE", "SCOPE", "SHARES", "MONTHLY_TOKENS", "UPDATED"}, empty: "no entitlements"}
	for _, e := range res.Entitlements {
		t.rows = append(t.rows, []any{e.Name, e.Model, e.State, scopeText(e.Scope), count(len(e.Shares)),
			tokens(e.Limits.MonthlyTokens), e.UpdatedAt})
	}
	return common.printRows(env.Stdout, t)
}

func entitlementsGet(ctx context.Context, args []string, env Env) error {
	fs, common := newFlags("entitlements get", "entitlements get NAME [flags]", env, objectFormats)
	pos, err := parse(fs, args)
	if err != nil {
		return done(err)
	}
	if len(pos) != 1 {
		return usageError(fs, "entitlements get: exactly one NAME is required")
	}
	c, err := common.client(env)
	if err != nil {
		return err
	}
	var res struct {
		Entitlement state.Entitlement `json:"entitlement"`
	}
	raw, err := c.getJSON(ctx, "/admin/v1/entitlements/"+pathEscape(pos[0]), nil, &res)
	if err != nil {
		return err
	}
	if ok, err := common.printRaw(env.Stdout, raw); ok {
		return err
	}
	printEntitlement(env.Stdout, &res.Entitlement)
	return nil
}

func printEntitlement(w io.Writer, e *state.Entitlement) {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(tw, "%s:\t%s\n", k, v)
		}
	}
	l := &e.Limits
	row("name", e.Name)
	row("model", e.Model)
	row("region", e.Region)
	row("description", e.Description)
	row("state", e.State)
	row("scope", scopeText(e.Scope))
	row("operations", orAll(e.Operations))
	row("async_output_prefixes", strings.Join(e.AsyncOutputPrefixes, ", "))
	row("service_tiers", tiersText(e.ServiceTiers))
	row("guardrails", orNone(e.Guardrails))
	row("billing_profiles", e.Billing.ProfileMode())
	row("monthly_tokens", tokensText(l.MonthlyTokens))
	row("account_monthly_tokens", tokensText(l.AccountMonthlyTokens))
	row("requests_per_minute", tokensText(l.RequestsPerMinute))
	row("tokens_per_minute", tokensText(l.TokensPerMinute))
	row("count", l.Count)
	row("estimate", l.Estimate)
	row("on_store_unavailable", l.OnStoreUnavailable)
	if len(l.AlertThresholds) > 0 {
		pct := make([]string, 0, len(l.AlertThresholds))
		for _, t := range l.AlertThresholds {
			pct = append(pct, fmt.Sprintf("%d%%", t))
		}
		row("alert_thresholds", strings.Join(pct, ", "))
	}
	row("created", timeText(e.CreatedAt))
	row("updated", timeText(e.UpdatedAt))
	_ = tw.Flush()
	printShares(w, e.Shares)
}

func printShares(w io.Writer, shares []state.Share) {
	if len(shares) == 0 {
		fmt.Fprintln(w, "\nnot shared with anyone")
		return
	}
	fmt.Fprintf(w, "\nshared with %s:\n", plural(len(shares), "target"))
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "  TARGET\tMONTHLY_TOKENS")
	for _, s := range shares {
		fmt.Fprintf(tw, "  %s\t%s\n", s.Target, tokensText(s.MonthlyTokens))
	}
	_ = tw.Flush()
}

// createFlags are the flags of "entitlements create NAME" and, but for -f
// and --suspended, of "entitlements update NAME".
type createFlags struct {
	file, model, region, description, scope, operations string
	asyncOutputPrefixes                                 string
	monthly, accountMonthly, rpm, tpm                   int64
	count, estimate, onStoreUnavailable                 string
	alertThresholds                                     string
	suspended                                           bool
	serviceTiers, guardrails                            string
	billingProfiles                                     string
}

func entitlementsCreate(ctx context.Context, args []string, env Env) error {
	fs, common := newFlags("entitlements create",
		"entitlements create -f FILE [flags]\n       gateway entitlements create NAME --model MODEL [flags]", env, objectFormats)
	var f createFlags
	fs.StringVar(&f.file, "f", "", "a YAML or JSON file holding one entitlement (as in a state file)")
	f.define(fs)
	fs.BoolVar(&f.suspended, "suspended", false, "create it suspended")
	pos, err := parse(fs, args)
	if err != nil {
		return done(err)
	}
	ent, err := f.entitlement(fs, pos)
	if err != nil {
		return err
	}
	c, err := common.client(env)
	if err != nil {
		return err
	}
	var res struct {
		Entitlement state.Entitlement `json:"entitlement"`
	}
	raw, err := c.sendJSON(ctx, http.MethodPost, "/admin/v1/entitlements", nil, ent, &res)
	if err != nil {
		return err
	}
	if ok, err := common.printRaw(env.Stdout, raw); ok {
		return err
	}
	fmt.Fprintf(env.Stdout, "created entitlement %s\n\n", res.Entitlement.Name)
	printEntitlement(env.Stdout, &res.Entitlement)
	return nil
}

// define adds the entitlement's field flags, shared by create and update.
func (f *createFlags) define(fs *flag.FlagSet) {
	fs.StringVar(&f.model, "model", "", "upstream Bedrock model ID, inference profile ID or ARN")
	fs.StringVar(&f.region, "region", "", "upstream region (default: the gateway's)")
	fs.StringVar(&f.description, "description", "", "free text")
	fs.StringVar(&f.scope, "scope", "", "comma-separated organization, OU and account IDs it may ever be shared with (default: the whole organization)")
	fs.StringVar(&f.operations, "operations", "", "comma-separated runtime operations allowed (default: all)")
	fs.StringVar(&f.asyncOutputPrefixes, "async-output-prefixes", "", "comma-separated S3 prefixes StartAsyncInvoke may write to ({account}: the caller's account ID; * for any; default: none, StartAsyncInvoke refused)")
	fs.Int64Var(&f.monthly, "monthly-tokens", 0, "monthly token cap of the entitlement as a whole (0: none)")
	fs.Int64Var(&f.accountMonthly, "account-monthly-tokens", 0, "default monthly token cap of each account (0: none)")
	fs.Int64Var(&f.rpm, "requests-per-minute", 0, "requests per minute per account (0: none)")
	fs.Int64Var(&f.tpm, "tokens-per-minute", 0, "tokens per minute per account (0: none)")
	fs.StringVar(&f.count, "count", "", "which tokens count against caps: total, input or output (default total)")
	fs.StringVar(&f.estimate, "estimate", "", "request token estimate: typical or strict (default typical)")
	fs.StringVar(&f.onStoreUnavailable, "on-store-unavailable", "", "fail_closed (default) or fail_open")
	fs.StringVar(&f.alertThresholds, "alert-thresholds", "", "comma-separated percentages of each cap at which budget alerts fire (default 50,80,100)")
	fs.StringVar(&f.serviceTiers, "service-tiers", "", "comma-separated service tiers members may ask for beyond the default: priority, flex, reserved, optimized (latency-optimized inference)")
	fs.StringVar(&f.guardrails, "guardrails", "", "comma-separated guardrail IDs or ARNs members may name or apply (default: none)")
	fs.StringVar(&f.billingProfiles, "billing-profiles", "", "application inference profiles for cost in AWS Billing: per_team, per_entitlement or none (default none; gateway billing sync creates them)")
}

func (f *createFlags) entitlement(fs *flag.FlagSet, pos []string) (e *state.Entitlement, err error) {
	if f.file != "" {
		var set []string
		fs.Visit(func(fl *flag.Flag) {
			if fl.Name != "f" && fl.Name != "admin-url" && fl.Name != "output" && fl.Name != "o" {
				set = append(set, "--"+fl.Name)
			}
		})
		if len(pos) > 0 || len(set) > 0 {
			return nil, usageError(fs, "entitlements create: -f FILE takes no NAME and no other entitlement flags (got %s)",
				strings.Join(append(pos, set...), " "))
		}
		data, err := readFile(f.file)
		if err != nil {
			return nil, err
		}
		return parseEntitlement(data)
	}
	if len(pos) != 1 {
		return nil, usageError(fs, "entitlements create: give -f FILE or exactly one NAME")
	}
	if f.model == "" {
		return nil, usageError(fs, "entitlements create: --model is required")
	}
	e = &state.Entitlement{
		Name:        pos[0],
		Model:       f.model,
		Region:      f.region,
		Description: f.description,
		Scope:       splitList(f.scope),
		Operations:  splitList(f.operations),
		Limits: state.Limits{
			MonthlyTokens:        f.monthly,
			AccountMonthlyTokens: f.accountMonthly,
			RequestsPerMinute:    f.rpm,
			TokensPerMinute:      f.tpm,
			Count:                f.count,
			Estimate:             f.estimate,
			OnStoreUnavailable:   f.onStoreUnavailable,
		},
	}
	e.AsyncOutputPrefixes = splitList(f.asyncOutputPrefixes)
	if e.Limits.AlertThresholds, err = thresholds(f.alertThresholds); err != nil {
		return nil, usageError(fs, "entitlements create: %v", err)
	}
	if f.suspended {
		e.State = state.EntitlementSuspended
	}
	e.ServiceTiers, e.Guardrails = splitList(f.serviceTiers), splitList(f.guardrails)
	e.Billing.Profiles = f.billingProfiles
	return e, nil
}

// parseEntitlement reads one entitlement from YAML or JSON, refusing unknown
// fields.
func parseEntitlement(data []byte) (*state.Entitlement, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var e state.Entitlement
	if err := dec.Decode(&e); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("the entitlement file is empty")
		}
		return nil, fmt.Errorf("parsing the entitlement file: %w", err)
	}
	return &e, nil
}

func entitlementsDelete(ctx context.Context, args []string, env Env) error {
	fs, common := newFlags("entitlements delete", "entitlements delete NAME [flags]", env, nil)
	pos, err := parse(fs, args)
	if err != nil {
		return done(err)
	}
	if len(pos) != 1 {
		return usageError(fs, "entitlements delete: exactly one NAME is required")
	}
	c, err := common.client(env)
	if err != nil {
		return err
	}
	if _, err := c.do(ctx, request{method: http.MethodDelete, path: "/admin/v1/entitlements/" + pathEscape(pos[0])}, nil); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "deleted entitlement %s\n", pos[0])
	return nil
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func scopeText(scope []string) string {
	if len(scope) == 0 {
		return "(organization)"
	}
	return strings.Join(scope, ",")
}

func orAll(ops []string) string {
	if len(ops) == 0 {
		return "all"
	}
	return strings.Join(ops, ", ")
}

// tiersText lists the tiers an entitlement allows: the default tier always.
func tiersText(tiers []string) string {
	all := []string{"default"}
	for _, t := range tiers {
		if t != "default" {
			all = append(all, t)
		}
	}
	return strings.Join(all, ", ")
}

func orNone(items []string) string {
	if len(items) == 0 {
		return "none"
	}
	return strings.Join(items, ", ")
}

func tokensText(n int64) string {
	if n == 0 {
		return "-"
	}
	s := fmt.Sprint(n)
	// Group digits in threes for readability: 50000000 → 50,000,000.
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func timeText(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}
