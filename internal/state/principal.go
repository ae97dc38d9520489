package state

import (
	"fmt"
	"slices"
	"strings"
)

// maxPrincipalLen bounds a principal pattern: IAM's own bound on a role ARN
// with its path is about 2048 characters, far above any useful pattern.
const maxPrincipalLen = 512

// Principal is an IAM identity reduced to what a principal pattern matches:
// the partition, the account, the kind (role or user) and the name without its
// IAM path. An assumed-role session is its role.
type Principal struct {
	Partition string
	Account   string
	Kind      string // "role" or "user"
	Name      string
}

// ParsePrincipal reduces an IAM user or role ARN, or an assumed-role session
// ARN (arn:aws:sts::ACCT:assumed-role/ROLE/SESSION), to a Principal. Paths are
// dropped: IAM Identity Center roles live under
// /aws-reserved/sso.amazonaws.com/ and patterns name roles, not paths. Any
// other ARN (the account root, federated users) is no Principal. It never
// allocates.
func ParsePrincipal(arn string) (Principal, bool) {
	rest, ok := strings.CutPrefix(arn, "arn:")
	if !ok {
		return Principal{}, false
	}
	partition, rest, ok := strings.Cut(rest, ":")
	if !ok || !isPartition(partition) {
		return Principal{}, false
	}
	service, rest, ok := strings.Cut(rest, ":")
	if !ok {
		return Principal{}, false
	}
	rest, ok = strings.CutPrefix(rest, ":") // no region
	if !ok {
		return Principal{}, false
	}
	account, resource, ok := strings.Cut(rest, ":")
	if !ok || !IsAccountID(account) {
		return Principal{}, false
	}
	var kind, name string
	switch service {
	case "iam":
		var path string
		kind, path, ok = strings.Cut(resource, "/")
		if !ok || (kind != "role" && kind != "user") {
			return Principal{}, false
		}
		name = path[strings.LastIndexByte(path, '/')+1:]
	case "sts":
		role, ok := strings.CutPrefix(resource, "assumed-role/")
		if !ok {
			return Principal{}, false
		}
		name, _, ok = strings.Cut(role, "/") // the session name follows
		if !ok {
			return Principal{}, false
		}
		kind = "role"
	default:
		return Principal{}, false
	}
	if name == "" {
		return Principal{}, false
	}
	return Principal{Partition: partition, Account: account, Kind: kind, Name: name}, true
}

// ARN is the principal's canonical IAM ARN without path or session:
// arn:<partition>:iam::<account>:role/<name> or user/<name>. It is what the
// usage ledger records, so every session of one role adds up to one row.
func (p Principal) ARN() string {
	return "arn:" + p.Partition + ":iam::" + p.Account + ":" + p.Kind + "/" + p.Name
}

// CanonicalPrincipal returns ParsePrincipal(arn).ARN(), or "" when arn is not
// an IAM user, role or assumed-role session ARN.
func CanonicalPrincipal(arn string) string {
	p, ok := ParsePrincipal(arn)
	if !ok {
		return ""
	}
	return p.ARN()
}

func isPartition(p string) bool { return p == "aws" || p == "aws-cn" || p == "aws-us-gov" }

// CheckPrincipalPattern validates a principal pattern:
// arn:<partition>:iam::<12 digits>:role/<name> or user/<name>, an IAM path
// allowed (and ignored) before the name, * wildcards only in the name.
func CheckPrincipalPattern(p string) error {
	if len(p) > maxPrincipalLen {
		return fmt.Errorf("principal %.40q… is longer than %d characters", p, maxPrincipalLen)
	}
	pr, ok := ParsePrincipal(p)
	if !ok || !strings.HasPrefix(p, "arn:"+pr.Partition+":iam::") {
		return fmt.Errorf("principal %q is not an IAM role or user ARN pattern (arn:aws:iam::<account>:role/<name> or user/<name>)", p)
	}
	if i := strings.IndexByte(p, '*'); i >= 0 && i < len(p)-len(pr.Name) {
		return fmt.Errorf("principal %q has a wildcard outside the role or user name", p)
	}
	for i := 0; i < len(pr.Name); i++ {
		if c := pr.Name[i]; !isIAMNameChar(c) && c != '*' {
			return fmt.Errorf("principal %q: name has a character IAM does not allow (%q)", p, c)
		}
	}
	return nil
}

// isIAMNameChar reports whether c may appear in an IAM role or user name.
func isIAMNameChar(c byte) bool {
	return isLowerAlnum(c) || (c >= 'A' && c <= 'Z') || strings.IndexByte("+=,.@_-", c) >= 0
}

// MatchPrincipal reports whether the caller's ARN (an IAM user or role, or an
// assumed-role session) matches a principal pattern: same partition, account
// and kind, and the name matches the pattern's name with * standing for any
// run of characters. IAM names are case-insensitive for uniqueness, so names
// compare case-insensitively. It never allocates.
func MatchPrincipal(pattern, arn string) bool {
	want, ok := ParsePrincipal(pattern)
	if !ok {
		return false
	}
	got, ok := ParsePrincipal(arn)
	if !ok {
		return false
	}
	return MatchParsed(want, got)
}

// MatchParsed is MatchPrincipal over parsed forms (pattern first).
func MatchParsed(pattern, p Principal) bool {
	return pattern.Partition == p.Partition && pattern.Account == p.Account &&
		pattern.Kind == p.Kind && globFold(pattern.Name, p.Name)
}

// globFold matches s against a pattern whose only metacharacter is *,
// ASCII-case-insensitively, in linear time (the classic backtrack to the last
// star).
func globFold(pattern, s string) bool {
	pi, si := 0, 0
	star, mark := -1, 0
	for si < len(s) {
		switch {
		case pi < len(pattern) && pattern[pi] == '*':
			star, mark = pi, si
			pi++
		case pi < len(pattern) && lowerASCII(pattern[pi]) == lowerASCII(s[si]):
			pi++
			si++
		case star >= 0:
			pi = star + 1
			mark++
			si = mark
		default:
			return false
		}
	}
	for pi < len(pattern) && pattern[pi] == '*' {
		pi++
	}
	return pi == len(pattern)
}

func lowerASCII(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// KindDeniedPrincipal is the Change kind of the principal deny list.
const KindDeniedPrincipal = "denied_principal"

func principalsChange(old, new []string) string {
	list := func(p []string) string {
		if len(p) == 0 {
			return "(whole account)"
		}
		return strings.Join(p, ", ")
	}
	return "principals: " + list(old) + " -> " + list(new)
}

// diffDeniedPrincipals lists the patterns added to and removed from the
// deny list, sorted.
func diffDeniedPrincipals(out []Change, old, new []string) []Change {
	in := func(list []string, p string) bool { return slices.Contains(list, p) }
	var changes []Change
	for _, p := range new {
		if !in(old, p) {
			changes = append(changes, Change{KindDeniedPrincipal, OpCreate, p, ""})
		}
	}
	for _, p := range old {
		if !in(new, p) {
			changes = append(changes, Change{KindDeniedPrincipal, OpDelete, p, ""})
		}
	}
	slices.SortFunc(changes, func(a, b Change) int { return strings.Compare(a.ID, b.ID) })
	return append(out, changes...)
}
