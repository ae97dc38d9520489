// Package opsauth authenticates callers of the ops listener (the admin API,
// /debug/pprof and, when configured, /metrics) by bearer token. Tokens are held
// as SHA-256 digests only: the admin token file stores nothing else, and a
// token given in the environment is hashed as soon as it is read. Every
// comparison runs over the digests in constant time.
package opsauth

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Role is what a token may do. Roles are ordered: viewer reads everything but
// secrets; operator also changes entitlements, shares, credentials and the
// principal deny list; admin may do everything. Each endpoint names the
// least role it needs (Allows).
type Role string

// The roles an admin token may carry.
const (
	RoleAdmin    Role = "admin"
	RoleOperator Role = "operator"
	RoleViewer   Role = "viewer"
)

// rank orders the roles; an unknown role ranks below every known one.
func (r Role) rank() int {
	switch r {
	case RoleViewer:
		return 1
	case RoleOperator:
		return 2
	case RoleAdmin:
		return 3
	}
	return 0
}

// Allows reports whether a principal with role r may use an endpoint that
// needs role need.
func (r Role) Allows(need Role) bool { return r.rank() > 0 && r.rank() >= need.rank() }

// ParseRole accepts admin, operator or viewer.
func ParseRole(s string) (Role, error) {
	switch r := Role(s); r {
	case RoleAdmin, RoleOperator, RoleViewer:
		return r, nil
	}
	return "", fmt.Errorf("unknown role %q (want admin, operator or viewer)", s)
}

// Token is one accepted bearer token, known by its SHA-256 digest.
type Token struct {
	Name   string
	Role   Role
	Digest [sha256.Size]byte
}

// NewToken hashes secret into a Token.
func NewToken(name string, role Role, secret string) Token {
	return Token{Name: name, Role: role, Digest: sha256.Sum256([]byte(secret))}
}

// Principal is who an authenticated request acts as.
type Principal struct {
	Name string
	Role Role
}

// digestPrefix marks the digest column of a token file line.
const digestPrefix = "sha256:"

// ParseFile parses an admin token file: one token a line as
// "NAME ROLE sha256:HEX" (HEX the SHA-256 of the token, 64 hex digits), with
// blank lines and '#' comments allowed. Every bad line is reported, by number.
func ParseFile(data []byte) ([]Token, error) {
	tokens, err := parse(data)
	if err == nil && len(tokens) == 0 {
		err = errors.New("no tokens (want lines of NAME ROLE sha256:HEX)")
	}
	if err != nil {
		return nil, err
	}
	return tokens, nil
}

// parse is ParseFile without its refusal of a file without tokens: a running
// gateway re-reading its token file accepts one, so that emptying the file
// ends every session opened with its tokens.
func parse(data []byte) ([]Token, error) {
	var (
		tokens []Token
		errs   []error
		names  = map[string]int{}
		sums   = map[[sha256.Size]byte]int{}
	)
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		tok, err := parseLine(fields)
		if err != nil {
			errs = append(errs, fmt.Errorf("line %d: %w", n, err))
			continue
		}
		if prev, ok := names[tok.Name]; ok {
			errs = append(errs, fmt.Errorf("line %d: name %q already used on line %d", n, tok.Name, prev))
			continue
		}
		if prev, ok := sums[tok.Digest]; ok {
			// One token under two names would make the audit actor ambiguous.
			errs = append(errs, fmt.Errorf("line %d: same token as line %d", n, prev))
			continue
		}
		names[tok.Name], sums[tok.Digest] = n, n
		tokens = append(tokens, tok)
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return tokens, nil
}

func parseLine(fields []string) (Token, error) {
	if len(fields) != 3 {
		return Token{}, fmt.Errorf("want NAME ROLE sha256:HEX, got %d fields", len(fields))
	}
	name, roleText, digest := fields[0], fields[1], fields[2]
	if err := ValidName(name); err != nil {
		return Token{}, err
	}
	role, err := ParseRole(roleText)
	if err != nil {
		return Token{}, err
	}
	hexPart, ok := strings.CutPrefix(digest, digestPrefix)
	if !ok {
		// Most likely the token itself was pasted: never echo it back.
		return Token{}, errors.New("the third field must be sha256:HEX, the token's SHA-256 (the file never holds the token itself)")
	}
	var t Token
	if len(hexPart) != 2*sha256.Size {
		return Token{}, fmt.Errorf("sha256: want %d hex digits, got %d", 2*sha256.Size, len(hexPart))
	}
	if _, err := hex.Decode(t.Digest[:], []byte(hexPart)); err != nil {
		return Token{}, errors.New("sha256: not hexadecimal")
	}
	t.Name, t.Role = name, role
	return t, nil
}

// ValidName accepts names made of letters, digits, '.', '_' and '-' (at most
// 64), as they appear in audit entries ("admin:NAME").
func ValidName(name string) error {
	if name == "" || len(name) > 64 {
		return fmt.Errorf("name %q: want 1 to 64 characters", clip(name))
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return fmt.Errorf("name %q: only letters, digits, '.', '_' and '-' are allowed", clip(name))
		}
	}
	return nil
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// Set is an immutable set of tokens.
type Set struct{ tokens []Token }

// NewSet returns the set of tokens.
func NewSet(tokens []Token) *Set {
	return &Set{tokens: append([]Token(nil), tokens...)}
}

// Len is the number of tokens; a set without tokens authenticates nobody.
func (s *Set) Len() int { return len(s.tokens) }

// Authenticate checks an Authorization header ("Bearer TOKEN") against every
// token in constant time, without stopping at the first match, so neither
// timing nor the token's length tells which token nearly matched.
func (s *Set) Authenticate(authorization string) (Principal, bool) {
	const prefix = "bearer "
	if len(authorization) <= len(prefix) || !strings.EqualFold(authorization[:len(prefix)], prefix) {
		return Principal{}, false
	}
	token := strings.TrimSpace(authorization[len(prefix):])
	if token == "" {
		return Principal{}, false
	}
	return s.Lookup(sha256.Sum256([]byte(token)))
}

// Lookup returns the principal of the token with the given SHA-256 digest,
// comparing against every token in constant time (as Authenticate). Sessions
// keep the digest of the token they were opened with and look it up on every
// use, so a token removed from the file ends its sessions and a changed role
// applies at once.
func (s *Set) Lookup(digest [sha256.Size]byte) (Principal, bool) {
	match := -1
	for i := range s.tokens {
		if subtle.ConstantTimeCompare(digest[:], s.tokens[i].Digest[:]) == 1 && match < 0 {
			match = i
		}
	}
	if match < 0 {
		return Principal{}, false
	}
	return Principal{Name: s.tokens[match].Name, Role: s.tokens[match].Role}, true
}

// Principals lists who the tokens act as (never their digests).
func (s *Set) Principals() []Principal {
	out := make([]Principal, len(s.tokens))
	for i, t := range s.tokens {
		out[i] = Principal{Name: t.Name, Role: t.Role}
	}
	return out
}

// Current makes a fixed Set a Source.
func (s *Set) Current() *Set { return s }

type principalKey struct{}

// NewContext returns ctx carrying p.
func NewContext(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// FromContext returns the principal of an authenticated request.
func FromContext(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

// Require serves next only to requests bearing one of the source's tokens
// whose role allows need; others get 401 with a WWW-Authenticate challenge of
// the given realm, or 403 naming the role needed. The principal is put in the
// request's context.
func Require(src Source, need Role, realm string, next http.Handler) http.Handler {
	challenge := `Bearer realm="` + realm + `"`
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		p, ok := src.Current().Authenticate(r.Header.Get("Authorization"))
		if !ok {
			w.Header().Set("WWW-Authenticate", challenge)
			http.Error(w, "a valid token is required: Authorization: Bearer <token>", http.StatusUnauthorized)
			return
		}
		if !p.Role.Allows(need) {
			http.Error(w, fmt.Sprintf("this needs the %s role; token %s has the %s role", need, p.Name, p.Role), http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r.WithContext(NewContext(r.Context(), p)))
	})
}

// Source gives the tokens accepted now: a fixed *Set, or a *FileSource that
// follows the admin token file.
type Source interface {
	Current() *Set
}
