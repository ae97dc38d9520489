package opsauth

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func digestHex(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

func TestParseFile(t *testing.T) {
	t.Parallel()
	a, b := digestHex("token-a-0123456789"), digestHex("token-b-0123456789")
	cases := []struct {
		name    string
		file    string
		want    []Principal
		wantErr []string // substrings of the error
	}{
		{name: "one token", file: "ops admin sha256:" + a + "\n", want: []Principal{{"ops", RoleAdmin}}},
		{name: "comments, blank lines, CRLF, no final newline",
			file: "# admin tokens\r\n\r\n  ops   operator  sha256:" + a + "  # the on-call\r\nviewer-1\tviewer\tsha256:" + strings.ToUpper(b),
			want: []Principal{{"ops", RoleOperator}, {"viewer-1", RoleViewer}}},
		{name: "empty", file: "", wantErr: []string{"no tokens"}},
		{name: "only comments", file: "# nothing\n\n", wantErr: []string{"no tokens"}},
		{name: "two fields", file: "ops admin\n", wantErr: []string{"line 1:", "got 2 fields"}},
		{name: "four fields", file: "\nops admin sha256:" + a + " extra\n", wantErr: []string{"line 2:", "got 4 fields"}},
		{name: "unknown role", file: "ops root sha256:" + a, wantErr: []string{"line 1:", `unknown role "root"`}},
		{name: "plain token instead of a digest is not echoed", file: "ops admin my-secret-admin-token", wantErr: []string{"line 1:", "sha256:HEX"}},
		{name: "short hex", file: "ops admin sha256:abcd", wantErr: []string{"line 1:", "want 64 hex digits, got 4"}},
		{name: "bad hex", file: "ops admin sha256:" + strings.Repeat("zz", 32), wantErr: []string{"line 1:", "not hexadecimal"}},
		{name: "bad name", file: "op$ admin sha256:" + a, wantErr: []string{"line 1:", "only letters"}},
		{name: "duplicate name", file: "ops admin sha256:" + a + "\nops viewer sha256:" + b, wantErr: []string{"line 2:", "already used on line 1"}},
		{name: "same token twice", file: "ops admin sha256:" + a + "\nother viewer sha256:" + a, wantErr: []string{"line 2:", "same token as line 1"}},
		{name: "every bad line reported", file: "a admin\nb root sha256:" + a + "\nc admin sha256:" + b,
			wantErr: []string{"line 1:", "line 2:"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseFile([]byte(tc.file))
			if len(tc.wantErr) > 0 {
				if err == nil {
					t.Fatalf("want an error, got %v", got)
				}
				for _, w := range tc.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q lacks %q", err, w)
					}
				}
				if strings.Contains(err.Error(), "my-secret-admin-token") {
					t.Errorf("error echoes the token: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d tokens, want %d", len(got), len(tc.want))
			}
			for i, w := range tc.want {
				if got[i].Name != w.Name || got[i].Role != w.Role {
					t.Errorf("token %d = %s/%s, want %s/%s", i, got[i].Name, got[i].Role, w.Name, w.Role)
				}
			}
		})
	}
}

func TestParseFileDigestAuthenticates(t *testing.T) {
	t.Parallel()
	tokens, err := ParseFile([]byte("ops operator sha256:" + digestHex("token-a-0123456789")))
	if err != nil {
		t.Fatal(err)
	}
	p, ok := NewSet(tokens).Authenticate("Bearer token-a-0123456789")
	if !ok || p != (Principal{"ops", RoleOperator}) {
		t.Fatalf("Authenticate = %v, %v", p, ok)
	}
}

func TestAuthenticate(t *testing.T) {
	t.Parallel()
	const secret = "test-admin-token-0123456789"
	set := NewSet([]Token{NewToken("ops", RoleAdmin, secret), NewToken("viewer", RoleViewer, "viewer-token-0123456789")})
	cases := []struct {
		name   string
		header string
		want   string // principal name; "" = refused
	}{
		{"bearer", "Bearer " + secret, "ops"},
		{"scheme in any case", "bEARER " + secret, "ops"},
		{"second token", "Bearer viewer-token-0123456789", "viewer"},
		{"no header", "", ""},
		{"wrong token", "Bearer nope", ""},
		{"prefix of the token", "Bearer " + secret[:10], ""},
		{"token plus a suffix", "Bearer " + secret + "x", ""},
		{"empty bearer", "Bearer ", ""},
		{"spaces only", "Bearer    ", ""},
		{"basic scheme", "Basic " + secret, ""},
		{"no scheme", secret, ""},
		{"digest instead of token", "Bearer " + digestHex(secret), ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, ok := set.Authenticate(tc.header)
			if ok != (tc.want != "") || p.Name != tc.want {
				t.Errorf("Authenticate(%q) = %v, %v; want %q", tc.header, p, ok, tc.want)
			}
		})
	}
	if _, ok := NewSet(nil).Authenticate("Bearer "); ok {
		t.Error("an empty set authenticated an empty bearer")
	}
}

func TestRequire(t *testing.T) {
	t.Parallel()
	set := NewSet([]Token{
		NewToken("ops", RoleViewer, "test-admin-token-0123456789"),
		NewToken("root", RoleAdmin, "test-root-token-0123456789"),
	})
	cases := []struct {
		need       Role
		header     string
		wantStatus int
		wantBody   string
	}{
		{RoleViewer, "", http.StatusUnauthorized, "a valid token is required"},
		{RoleViewer, "Bearer wrong", http.StatusUnauthorized, "a valid token is required"},
		{RoleViewer, "Bearer test-admin-token-0123456789", http.StatusOK, "ops/viewer"},
		{RoleAdmin, "Bearer test-admin-token-0123456789", http.StatusForbidden, "needs the admin role"},
		{RoleAdmin, "Bearer test-root-token-0123456789", http.StatusOK, "root/admin"},
	}
	for _, tc := range cases {
		h := Require(set, tc.need, "gateway-test", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p, _ := FromContext(r.Context())
			fmt.Fprintf(w, "%s/%s", p.Name, p.Role)
		}))
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, "/x", nil)
		if tc.header != "" {
			req.Header.Set("Authorization", tc.header)
		}
		h.ServeHTTP(rec, req)
		if rec.Code != tc.wantStatus || !strings.Contains(rec.Body.String(), tc.wantBody) {
			t.Errorf("%s %q: %d %q, want %d %q", tc.need, tc.header, rec.Code, rec.Body, tc.wantStatus, tc.wantBody)
		}
		if tc.wantStatus == http.StatusUnauthorized && rec.Header().Get("WWW-Authenticate") != `Bearer realm="gateway-test"` {
			t.Errorf("%q: WWW-Authenticate %q", tc.header, rec.Header().Get("WWW-Authenticate"))
		}
	}
}

func TestRoleAllows(t *testing.T) {
	t.Parallel()
	roles := []Role{RoleViewer, RoleOperator, RoleAdmin}
	for i, have := range roles {
		for j, need := range roles {
			if got := have.Allows(need); got != (i >= j) {
				t.Errorf("%s.Allows(%s) = %v", have, need, got)
			}
		}
		if Role("").Allows(have) || Role("root").Allows(have) {
			t.Errorf("an unknown role is allowed what needs %s", have)
		}
	}
}

func TestLookup(t *testing.T) {
	t.Parallel()
	set := NewSet([]Token{NewToken("a", RoleViewer, "token-a-0123456789"), NewToken("b", RoleAdmin, "token-b-0123456789")})
	if p, ok := set.Lookup(sha256.Sum256([]byte("token-b-0123456789"))); !ok || p != (Principal{"b", RoleAdmin}) {
		t.Fatalf("Lookup = %v, %v", p, ok)
	}
	if _, ok := set.Lookup(sha256.Sum256([]byte("token-c-0123456789"))); ok {
		t.Fatal("an unknown digest was found")
	}
	if got := set.Principals(); len(got) != 2 || got[0] != (Principal{"a", RoleViewer}) {
		t.Fatalf("Principals = %v", got)
	}
}

// FuzzParseFile: the parser never panics, and what it accepts is valid and
// survives being written back out and parsed again.
func FuzzParseFile(f *testing.F) {
	a := digestHex("a")
	for _, seed := range []string{
		"ops admin sha256:" + a,
		"# c\n\nops operator sha256:" + a + " # x\r\nv viewer sha256:" + digestHex("b"),
		"ops admin", "ops admin sha256:zz", "ops admin sha256:" + a + "\nops admin sha256:" + a, "\x00 \xff sha256:",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		tokens, err := ParseFile(data)
		if err != nil {
			if tokens != nil {
				t.Fatal("tokens returned with an error")
			}
			return
		}
		var b strings.Builder
		names := map[string]bool{}
		for _, tok := range tokens {
			if ValidName(tok.Name) != nil {
				t.Fatalf("accepted name %q", tok.Name)
			}
			if _, err := ParseRole(string(tok.Role)); err != nil {
				t.Fatalf("accepted role %q", tok.Role)
			}
			if names[tok.Name] {
				t.Fatalf("duplicate name %q accepted", tok.Name)
			}
			names[tok.Name] = true
			fmt.Fprintf(&b, "%s %s sha256:%x\n", tok.Name, tok.Role, tok.Digest)
		}
		again, err := ParseFile([]byte(b.String()))
		if err != nil {
			t.Fatalf("re-parsing %q: %v", b.String(), err)
		}
		if len(again) != len(tokens) {
			t.Fatalf("re-parsed %d tokens, want %d", len(again), len(tokens))
		}
		for i := range again {
			if again[i] != tokens[i] {
				t.Fatalf("token %d changed: %+v -> %+v", i, tokens[i], again[i])
			}
		}
	})
}
