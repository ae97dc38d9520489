package admin

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/bedrock-gateway/gateway/internal/opsauth"
	"github.com/bedrock-gateway/gateway/internal/state"
)

func csvOfAccounts(n int) []byte {
	var b strings.Builder
	b.WriteString("account_id,monthly_tokens\r\n")
	for i := range n {
		fmt.Fprintf(&b, "%012d,%d\r\n", 100000000000+i, i)
	}
	return []byte(b.String())
}

func BenchmarkParseSharesCSV(b *testing.B) {
	data := csvOfAccounts(10000)
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, p, err := parseSharesCSV(bytes.NewReader(data), 0); p.total > 0 || err != nil {
			b.Fatal(p.items, err)
		}
	}
}

// BenchmarkAddSharesCSV shares one entitlement with every account of a large
// organization in one request, through the handler and the fake store.
func BenchmarkAddSharesCSV(b *testing.B) {
	const n = 20000
	st := seedState(b)
	for i := range n {
		st.Organization.Accounts = append(st.Organization.Accounts,
			state.Account{ID: fmt.Sprintf("%012d", 100000000000+i), Name: "acct", Unit: "ou-ab12-ds000001"})
	}
	body := string(csvOfAccounts(n))
	h := New(Options{Store: newFakeStore(st), Tokens: []opsauth.Token{opsauth.NewToken("ops", opsauth.RoleAdmin, testToken)}})
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/admin/v1/entitlements/customer-support-llm/shares", strings.NewReader(body))
		req.Header.Set("Content-Type", "text/csv")
		req.Header.Set("Authorization", "Bearer "+testToken)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("status %d: %s", rec.Code, rec.Body.String()[:200])
		}
	}
}
