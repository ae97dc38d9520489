package cli

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/bedrock-gateway/gateway/internal/state"
)

// limitFlags are the update flags that set a field of limits.
var limitFlags = []string{"monthly-tokens", "account-monthly-tokens", "requests-per-minute", "tokens-per-minute",
	"count", "estimate", "on-store-unavailable", "alert-thresholds"}

func entitlementsUpdate(ctx context.Context, args []string, env Env) error {
	fs, common := newFlags("entitlements update", "entitlements update NAME [flags]\n\n"+
		"Changes only the fields whose flags are given. Limit flags change that limit alone: the\n"+
		"others are read from the gateway and kept (0 removes a cap). A list flag replaces the\n"+
		"list; an empty one (--scope \"\") restores the default.", env, objectFormats)
	var f createFlags
	f.define(fs)
	st := fs.String("state", "", "active or suspended")
	pos, err := parse(fs, args)
	if err != nil {
		return done(err)
	}
	if len(pos) != 1 {
		return usageError(fs, "entitlements update: exactly one NAME is required")
	}
	name := pos[0]
	patch := map[string]any{}
	limitsChanged := false
	fs.Visit(func(fl *flag.Flag) {
		switch fl.Name {
		case "model", "region", "description":
			patch[fl.Name] = fl.Value.String()
		case "scope", "operations", "async-output-prefixes", "service-tiers", "guardrails":
			list := splitList(fl.Value.String())
			if list == nil {
				list = []string{} // the default: whole organization, every operation, none
			}
			patch[strings.ReplaceAll(fl.Name, "-", "_")] = list
		case "state":
			patch["state"] = *st
		case "billing-profiles":
			patch["billing"] = state.Billing{Profiles: f.billingProfiles}
		default:
			limitsChanged = limitsChanged || slices.Contains(limitFlags, fl.Name)
		}
	})
	if *st != "" && *st != state.EntitlementActive && *st != state.EntitlementSuspended {
		return usageError(fs, "entitlements update: --state must be %s or %s, not %q", state.EntitlementActive, state.EntitlementSuspended, *st)
	}
	th, err := thresholds(f.alertThresholds)
	if err != nil {
		return usageError(fs, "entitlements update: %v", err)
	}
	if len(patch) == 0 && !limitsChanged {
		return usageError(fs, "entitlements update: nothing to change; give at least one field flag")
	}
	c, err := common.client(env)
	if err != nil {
		return err
	}
	path := "/admin/v1/entitlements/" + pathEscape(name)
	if limitsChanged {
		// PATCH replaces limits whole: merge the flags given into the
		// current limits so --monthly-tokens alone keeps the rest.
		var cur struct {
			Entitlement state.Entitlement `json:"entitlement"`
		}
		if _, err := c.getJSON(ctx, path, nil, &cur); err != nil {
			return err
		}
		l := cur.Entitlement.Limits
		fs.Visit(func(fl *flag.Flag) {
			switch fl.Name {
			case "monthly-tokens":
				l.MonthlyTokens = f.monthly
			case "account-monthly-tokens":
				l.AccountMonthlyTokens = f.accountMonthly
			case "requests-per-minute":
				l.RequestsPerMinute = f.rpm
			case "tokens-per-minute":
				l.TokensPerMinute = f.tpm
			case "count":
				l.Count = f.count
			case "estimate":
				l.Estimate = f.estimate
			case "on-store-unavailable":
				l.OnStoreUnavailable = f.onStoreUnavailable
			case "alert-thresholds":
				l.AlertThresholds = th
			}
		})
		patch["limits"] = l
	}
	var res struct {
		Entitlement state.Entitlement `json:"entitlement"`
	}
	raw, err := c.sendJSON(ctx, http.MethodPatch, path, nil, patch, &res)
	if err != nil {
		return err
	}
	if ok, err := common.printRaw(env.Stdout, raw); ok {
		return err
	}
	fmt.Fprintf(env.Stdout, "updated entitlement %s\n\n", res.Entitlement.Name)
	printEntitlement(env.Stdout, &res.Entitlement)
	return nil
}

// thresholds parses --alert-thresholds: comma-separated percentages, "%"
// allowed. Empty gives nil, the default.
func thresholds(s string) ([]int, error) {
	var out []int
	for _, p := range splitList(s) {
		n, err := strconv.Atoi(strings.TrimSuffix(p, "%"))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("--alert-thresholds: %q is not a positive percentage", p)
		}
		out = append(out, n)
	}
	return out, nil
}
