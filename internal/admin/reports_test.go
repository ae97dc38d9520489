package admin

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"testing"
)

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

type fakeUsage struct{ got UsageQuery }

func (f *fakeUsage) Usage(_ context.Context, q UsageQuery) (any, []byte, error) {
	f.got = q
	if q.GroupBy == "model" {
		return nil, nil, fmt.Errorf("model grouping needs a price table: %w", ErrInvalidQuery)
	}
	if q.Format == "csv" {
		return nil, []byte("month,team\n" + q.Month + ",dev\n"), nil
	}
	return map[string]any{"month": q.Month, "rows": []any{}}, nil, nil
}

type fakeQuota struct{}

func (fakeQuota) Remaining(_ context.Context, name string) (any, error) {
	if name == "dev-only" {
		return nil, errors.New("redis down")
	}
	return map[string]int64{"entitlement": 42}, nil
}

func TestUsageAndQuota(t *testing.T) {
	t.Parallel()
	none := newEnv(t, seedState(t))
	wantError(t, none.do(http.MethodGet, "/admin/v1/usage", "", ""), http.StatusNotImplemented, codeNotImplemented)
	wantError(t, none.do(http.MethodGet, "/admin/v1/entitlements/dev-only/quota", "", ""), http.StatusNotImplemented, codeNotImplemented)

	u := &fakeUsage{}
	e := newEnv(t, seedState(t), func(o *Options) { o.Usage = u; o.Quota = fakeQuota{} })
	r := e.do(http.MethodGet, "/admin/v1/usage", "", "")
	wantStatus(t, r, http.StatusOK)
	if u.got != (UsageQuery{Month: "2025-03", Format: "json"}) {
		t.Fatalf("query %+v", u.got)
	}
	r = e.do(http.MethodGet, "/admin/v1/usage?month=2025-01&group_by=team&format=csv", "", "")
	wantStatus(t, r, http.StatusOK)
	if string(r.body) != "month,team\n2025-01,dev\n" || r.header.Get("Content-Type") != "text/csv; charset=utf-8" {
		t.Fatalf("csv %q %q", r.body, r.header.Get("Content-Type"))
	}
	for _, q := range []string{"month=2025-1", "month=March", "group_by=planet", "format=xml", "group_by=model"} {
		wantError(t, e.do(http.MethodGet, "/admin/v1/usage?"+q, "", ""), http.StatusBadRequest, codeBadRequest)
	}

	r = e.do(http.MethodGet, "/admin/v1/entitlements/customer-support-llm/quota", "", "")
	wantStatus(t, r, http.StatusOK)
	wantError(t, e.do(http.MethodGet, "/admin/v1/entitlements/nope/quota", "", ""), http.StatusNotFound, codeNotFound)
	wantError(t, e.do(http.MethodGet, "/admin/v1/entitlements/dev-only/quota", "", ""), http.StatusInternalServerError, codeInternal)
}
