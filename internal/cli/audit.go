package cli

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"time"
)

// auditEntry is what the table shows of an audit entry of GET /admin/v1/audit
// (store.AuditEntry's JSON; the CLI decodes it without depending on the store).
type auditEntry struct {
	ID     string    `json:"id"`
	Time   time.Time `json:"time"`
	Actor  string    `json:"actor"`
	Action string    `json:"action"`
	Target string    `json:"target"`
}

func runAudit(ctx context.Context, args []string, env Env) error {
	fs, common := newFlags("audit", "audit [--limit N] [--since TIME|DURATION] [--before ID] [--actor S] [--action S] [--target S] [flags]\n\n"+
		"Shows the audit log, newest first: who changed what, and when.", env, readFormats)
	limit := fs.Int("limit", 50, "number of entries (1 to 1000)")
	since := fs.String("since", "", "only entries since an RFC 3339 time, or this long ago (e.g. 24h)")
	before := fs.String("before", "", "only entries older than this entry ID (paging)")
	actor := fs.String("actor", "", "only entries whose actor contains this (ignoring case), e.g. admin:ops")
	action := fs.String("action", "", "only entries whose action contains this (ignoring case), e.g. share.")
	target := fs.String("target", "", "only entries whose target contains this (ignoring case), e.g. an entitlement name")
	pos, err := parse(fs, args)
	if err != nil {
		return done(err)
	}
	if len(pos) > 0 {
		return usageError(fs, "audit: unexpected argument %q", pos[0])
	}
	if *limit < 1 || *limit > 1000 {
		return usageError(fs, "audit: --limit must be from 1 to 1000")
	}
	q := url.Values{"limit": {strconv.Itoa(*limit)}}
	if *before != "" {
		q.Set("before", *before)
	}
	for name, v := range map[string]string{"actor": *actor, "action": *action, "target": *target} {
		if v != "" {
			q.Set(name, v)
		}
	}
	if *since != "" {
		t, err := parseSince(*since)
		if err != nil {
			return usageError(fs, "audit: %v", err)
		}
		q.Set("since", t.Format(time.RFC3339))
	}
	c, err := common.client(env)
	if err != nil {
		return err
	}
	var res struct {
		Entries []auditEntry `json:"entries"`
	}
	raw, err := c.getJSON(ctx, "/admin/v1/audit", q, &res)
	if err != nil {
		return err
	}
	if ok, err := common.printRaw(env.Stdout, raw); ok {
		return err
	}
	t := table{header: []string{"TIME", "ACTOR", "ACTION", "TARGET", "ID"}, empty: "no audit entries"}
	for _, e := range res.Entries {
		t.rows = append(t.rows, []any{e.Time, e.Actor, e.Action, e.Target, e.ID})
	}
	return common.printRows(env.Stdout, t)
}

func parseSince(s string) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return time.Now().Add(-d).UTC(), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("--since %q must be an RFC 3339 time or a duration such as 24h", s)
	}
	return t, nil
}
