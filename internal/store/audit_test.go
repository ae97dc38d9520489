package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bedrock-gateway/gateway/internal/state"
	"github.com/bedrock-gateway/gateway/internal/testutil/redistest"
)

func TestAuditEntries(t *testing.T) {
	t.Parallel()
	testAuditEntries(t, redistest.Start(t).Client(t), "gw")
}

func testAuditEntries(t *testing.T, c redis.UniversalClient, prefix string) {
	ctx := t.Context()
	clk := &clock{}
	s := newStore(t, c, Options{Prefix: prefix, Now: clk.Now})
	if _, err := s.Replace(ctx, "admin:bootstrap", sampleState(1)); err != nil {
		t.Fatal(err)
	}
	rotated := "rotated-" + testSecret
	if _, err := s.Update(ctx, "admin:ops", "credential.update", func(st *state.State) error {
		st.Credentials[0].Label = "support-bot-v2"
		st.Credentials[0].Secret = rotated
		st.Entitlements[0].Shares = st.Entitlements[0].Shares[:1]
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	entries, err := s.Audit(ctx, AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	byTarget := map[string]AuditEntry{}
	for _, e := range entries[:2] {
		byTarget[e.Target] = e
	}
	cred := byTarget["credential/GWEXAMPLE00000000001"]
	if cred.Actor != "admin:ops" || cred.Action != "credential.update" || cred.ID == "" {
		t.Fatalf("credential entry: %+v", cred)
	}
	if !cred.Time.Equal(time.Date(2026, 1, 1, 0, 0, 2, 0, time.UTC)) {
		t.Fatalf("time %v, want the injected clock's second reading", cred.Time)
	}
	var before, after state.Credential
	if err := json.Unmarshal(cred.Before, &before); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(cred.After, &after); err != nil {
		t.Fatal(err)
	}
	if before.Label != "support-bot" || after.Label != "support-bot-v2" || before.Secret != "" || after.Secret != "" {
		t.Fatalf("before %+v after %+v", before, after)
	}
	ent := byTarget["entitlement/ent-00000"]
	var eb, ea state.Entitlement
	if err := json.Unmarshal(ent.Before, &eb); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(ent.After, &ea); err != nil {
		t.Fatal(err)
	}
	if len(eb.Shares) != 2 || len(ea.Shares) != 1 {
		t.Fatalf("entitlement before %+v after %+v", eb, ea)
	}

	// The first update created everything: no before side.
	first := entries[len(entries)-1]
	if first.Before != nil || first.After == nil || first.Action != "apply" || first.Actor != "admin:bootstrap" {
		t.Fatalf("oldest entry: %+v", first)
	}

	// No secret anywhere in the stream, whatever the field.
	msgs, err := c.XRange(ctx, s.keys.audit, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		for k, v := range m.Values {
			if str, _ := v.(string); strings.Contains(str, testSecret) {
				t.Fatalf("audit entry %s field %s holds a secret", m.ID, k)
			}
		}
	}

	// The store itself keeps the sigv4 secret: signatures are verified with it.
	st, _, err := s.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Credentials[0].Secret != rotated {
		t.Fatal("sigv4 secret not kept in the store")
	}
}

func TestAuditPaging(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	c := redistest.Start(t).Client(t)
	clk := &clock{}
	s := newStore(t, c, Options{Now: clk.Now})
	const n = 25
	for i := range n {
		if _, err := s.Update(ctx, "test", "edit", func(st *state.State) error {
			st.Entitlements = []state.Entitlement{sampleEntitlement("e")}
			st.Entitlements[0].Description = strconv.Itoa(i)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	var all []AuditEntry
	cursor := ""
	for page := 0; ; page++ {
		got, err := s.Audit(ctx, AuditQuery{Limit: 10, Before: cursor})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) == 0 {
			break
		}
		if page > 3 {
			t.Fatal("paging does not end")
		}
		all = append(all, got...)
		cursor = got[len(got)-1].ID
	}
	if len(all) != n {
		t.Fatalf("%d entries over all pages, want %d", len(all), n)
	}
	for i, e := range all {
		var ent state.Entitlement
		if err := json.Unmarshal(e.After, &ent); err != nil {
			t.Fatal(err)
		}
		if want := strconv.Itoa(n - 1 - i); ent.Description != want {
			t.Fatalf("entry %d is change %s, want %s (newest first)", i, ent.Description, want)
		}
	}

	tests := []struct {
		name string
		q    AuditQuery
		want int
	}{
		{"default limit", AuditQuery{}, n},
		{"limit", AuditQuery{Limit: 3}, 3},
		{"limit above max is capped", AuditQuery{Limit: 5000}, n},
		{"since", AuditQuery{Since: all[4].Time}, 5},
		{"since and before", AuditQuery{Since: all[4].Time, Before: all[1].ID}, 3},
		{"before the oldest", AuditQuery{Before: all[n-1].ID}, 0},
	}
	for _, tt := range tests {
		got, err := s.Audit(ctx, tt.q)
		if err != nil || len(got) != tt.want {
			t.Errorf("%s: %d entries (%v), want %d", tt.name, len(got), err, tt.want)
		}
	}
	for _, bad := range []string{"x", "1-", "-1", "1-2-3", "+", "99999999999999999999999"} {
		if _, err := s.Audit(ctx, AuditQuery{Before: bad}); !errors.Is(err, ErrInvalidCursor) {
			t.Errorf("cursor %q: %v", bad, err)
		}
	}
}

func TestAuditTrimmed(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	c := redistest.Start(t).Client(t)
	s := newStore(t, c, Options{AuditMax: 10})
	const n = 300
	for i := range n {
		if _, err := s.Update(ctx, "test", "edit", func(st *state.State) error {
			st.Organization.ID = fmt.Sprintf("o-org%07d", i)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	// MAXLEN ~ trims whole stream nodes, so the length is bounded but not exact.
	l, err := c.XLen(ctx, s.keys.audit).Result()
	if err != nil {
		t.Fatal(err)
	}
	if l < 10 || l >= n {
		t.Fatalf("audit length %d after %d entries with AuditMax 10", l, n)
	}
}

func FuzzAuditCursor(f *testing.F) {
	for _, s := range []string{"1700000000000-0", "1", "", "-", "1-2-3", "(1-0", "18446744073709551615-18446744073709551615", "18446744073709551616"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		if !isStreamID(id) {
			return
		}
		// Accepted cursors are exactly <uint64>[-<uint64>].
		ms, seq, hasSeq := strings.Cut(id, "-")
		if _, err := strconv.ParseUint(ms, 10, 64); err != nil {
			t.Fatalf("accepted %q", id)
		}
		if hasSeq {
			if _, err := strconv.ParseUint(seq, 10, 64); err != nil {
				t.Fatalf("accepted %q", id)
			}
		}
		if strings.ContainsAny(id, "+( ") {
			t.Fatalf("accepted %q", id)
		}
	})
}

// TestAuditRecordsPrincipals: admin changes that name IAM principals (a
// share narrowed to principals, the deny list) carry the patterns in the
// audit log, so "who may use this" changes are traceable.
func TestAuditRecordsPrincipals(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := newStore(t, redistest.Start(t).Client(t), Options{})
	if _, err := s.Replace(ctx, "admin:bootstrap", sampleState(1)); err != nil {
		t.Fatal(err)
	}
	const pattern = "arn:aws:iam::222222222222:role/support-*"
	const denied = "arn:aws:iam::222222222222:user/leaver"
	if _, err := s.Update(ctx, "admin:ops", "share.update", func(st *state.State) error {
		st.Entitlements[0].Shares = []state.Share{{Target: "222222222222", Principals: []string{pattern}}}
		st.DeniedPrincipals = []string{denied}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	entries, err := s.Audit(ctx, AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	var sawShare, sawDeny bool
	for _, e := range entries {
		switch {
		case e.Action == "share.update" && strings.HasPrefix(e.Target, "entitlement/"):
			sawShare = strings.Contains(string(e.After), pattern) && !strings.Contains(string(e.Before), pattern)
		case e.Action == "share.update" && strings.Contains(e.Target, denied):
			sawDeny = e.Actor == "admin:ops"
		}
	}
	if !sawShare || !sawDeny {
		t.Fatalf("audit entries do not name the principals (share %v, deny %v): %+v", sawShare, sawDeny, entries)
	}
}
