package state

import (
	"errors"
	"fmt"
	"unicode"
	"unicode/utf8"

	"github.com/bedrock-gateway/gateway/internal/bedrock"
)

// Bounds on free-form fields.
const (
	maxModelLen       = 2048 // Bedrock's own bound on a model identifier
	maxNameLen        = 128  // unit and account names
	maxTeamLen        = 64   // a metric label value
	maxLabelLen       = 64
	maxDescriptionLen = 1024
	maxRegionLen      = 32
	minSecretLen      = 16
	maxSecretLen      = 128
	maxCredentialID   = 128
)

// Validate checks every ID format and cross-reference and reports every problem
// at once (joined with errors.Join), each naming the item, e.g.
//
//	entitlements[2] (customer-support-llm): share target ou-ab12-x0000001 is outside the scope
//
// Validate accepts a state before or after Normalize (empty enumerations mean
// their defaults) but expects secrets to be resolved already. A completely empty
// state is valid: it is what a fresh store holds and it grants nothing.
func (s *State) Validate() error {
	v := newValidator(s)
	v.revoked()
	v.deniedPrincipals()
	if s.isEmpty() {
		return errors.Join(v.errs...)
	}
	v.organization()
	v.entitlements()
	v.credentials()
	return errors.Join(v.errs...)
}

func (s *State) isEmpty() bool {
	o := &s.Organization
	return o.ID == "" && o.Root == "" && o.HubAccount == "" && len(o.Units) == 0 &&
		len(o.Accounts) == 0 && len(s.Entitlements) == 0 && len(s.Credentials) == 0
}

// Unit reachability, computed once so that scope checks never loop.
const (
	unitUnknown uint8 = iota
	unitOK            // its parent chain reaches the root
	unitBroken        // its parent chain is cyclic or names a missing unit
)

type validator struct {
	s        *State
	root     string         // the organization root, given or referenced
	units    map[string]int // OU ID → index of its first occurrence
	accounts map[string]int // account ID → index of its first occurrence
	unitOK   map[string]uint8
	runtime  map[bedrock.Operation]bool // operations an entitlement may list
	// revokedKeys are the tombstones as credentialKey forms, built on first use.
	revokedKeys map[string]bool
	errs        []error
}

func newValidator(s *State) *validator {
	v := &validator{
		s:        s,
		root:     s.referencedRoot(),
		units:    make(map[string]int, len(s.Organization.Units)),
		accounts: make(map[string]int, len(s.Organization.Accounts)),
		unitOK:   make(map[string]uint8, len(s.Organization.Units)),
		runtime:  make(map[bedrock.Operation]bool),
	}
	for _, op := range bedrock.RuntimeOperations() {
		v.runtime[op] = true
	}
	for i, u := range s.Organization.Units {
		if _, dup := v.units[u.ID]; !dup {
			v.units[u.ID] = i
		}
	}
	for i, a := range s.Organization.Accounts {
		if _, dup := v.accounts[a.ID]; !dup {
			v.accounts[a.ID] = i
		}
	}
	return v
}

func (v *validator) add(item string, format string, args ...any) {
	v.errs = append(v.errs, fmt.Errorf("%s: %s", item, fmt.Sprintf(format, args...)))
}

func unitItem(i int, u *Unit) string { return fmt.Sprintf("organization.units[%d] (%s)", i, u.ID) }
func accountItem(i int, a *Account) string {
	return fmt.Sprintf("organization.accounts[%d] (%s)", i, a.ID)
}
func entitlementItem(i int, e *Entitlement) string {
	return fmt.Sprintf("entitlements[%d] (%s)", i, e.Name)
}
func credentialItem(i int, c *Credential) string {
	name := c.ID
	if name == "" {
		name = c.AccessKeyID
	}
	if name == "" {
		name = c.Label
	}
	return fmt.Sprintf("credentials[%d] (%s)", i, name)
}

// isRootRef reports whether id names the root (the parent of a top-level unit or
// account).
func (v *validator) isRootRef(id string) bool { return id != "" && id == v.root }

func (v *validator) organization() {
	o := &v.s.Organization
	const item = "organization"
	if !IsOrgID(o.ID) {
		v.add(item, "id %q is not an organization ID (o- and 10 to 32 lowercase letters or digits)", o.ID)
	}
	if o.Root != "" && !IsRootID(o.Root) {
		v.add(item, "root %q is not a root ID (r- and 4 to 32 lowercase letters or digits)", o.Root)
	}
	// The hub need not be listed among the accounts: it shares models but is
	// not necessarily a consumer of them (the documented example omits it).
	if !IsAccountID(o.HubAccount) {
		v.add(item, "hub_account %q is not a 12-digit account ID", o.HubAccount)
	}
	if o.Source != "" && o.Source != OrgSourceAWS {
		v.add(item, "source %q must be empty or %s (set by org sync)", o.Source, OrgSourceAWS)
	}

	for i := range o.Units {
		v.unit(i, &o.Units[i])
	}
	for _, u := range o.Units {
		v.unitChain(u.ID)
	}
	for i := range o.Accounts {
		v.account(i, &o.Accounts[i])
	}
}

func (v *validator) hasAccount(id string) bool { _, ok := v.accounts[id]; return ok }
func (v *validator) hasUnit(id string) bool    { _, ok := v.units[id]; return ok }

func (v *validator) unit(i int, u *Unit) {
	item := unitItem(i, u)
	if !IsOUID(u.ID) {
		v.add(item, "id %q is not an OU ID (ou-, 4 to 32 lowercase letters or digits, -, 8 to 32 more)", u.ID)
	} else if first := v.units[u.ID]; first != i {
		v.add(item, "duplicate OU ID (also organization.units[%d])", first)
	}
	v.checkName(item, "name", u.Name, maxNameLen, true)
	switch {
	case u.Parent == "" || v.isRootRef(u.Parent):
	case IsRootID(u.Parent):
		v.add(item, "parent %s is not the organization root %s", u.Parent, v.root)
	case u.Parent == u.ID:
		v.add(item, "is its own parent")
	case !v.hasUnit(u.Parent):
		v.add(item, "parent %s is not one of the units", u.Parent)
	default:
		if v.unitChain(u.ID) == unitBroken && v.onCycle(u.ID) {
			v.add(item, "parent chain forms a cycle")
		}
	}
}

// unitChain classifies a unit by following its parents, memoizing every unit it
// passes so the whole tree costs linear time.
func (v *validator) unitChain(id string) uint8 {
	var path []string
	seen := make(map[string]bool)
	status := unitOK
	for cur := id; ; {
		if st := v.unitOK[cur]; st != unitUnknown {
			status = st
			break
		}
		idx, ok := v.units[cur]
		if !ok || seen[cur] {
			status = unitBroken
			break
		}
		seen[cur] = true
		path = append(path, cur)
		p := v.s.Organization.Units[idx].Parent
		if p == "" || v.isRootRef(p) {
			break
		}
		if IsRootID(p) {
			status = unitBroken
			break
		}
		cur = p
	}
	for _, p := range path {
		v.unitOK[p] = status
	}
	return status
}

// onCycle reports whether following id's parents leads back to id.
func (v *validator) onCycle(id string) bool {
	cur := id
	for range len(v.s.Organization.Units) {
		idx, ok := v.units[cur]
		if !ok {
			return false
		}
		cur = v.s.Organization.Units[idx].Parent
		if cur == id {
			return true
		}
	}
	return false
}

func (v *validator) account(i int, a *Account) {
	item := accountItem(i, a)
	if !IsAccountID(a.ID) {
		v.add(item, "id %q is not a 12-digit account ID", a.ID)
	} else if first := v.accounts[a.ID]; first != i {
		v.add(item, "duplicate account ID (also organization.accounts[%d])", first)
	}
	v.checkName(item, "name", a.Name, maxNameLen, true)
	v.checkName(item, "team", a.Team, maxTeamLen, false)
	switch a.State {
	case "", AccountActive, AccountSuspended, AccountClosed:
	default:
		v.add(item, "state %q is not active, suspended or closed", a.State)
	}
	switch {
	case a.Unit == "" || v.isRootRef(a.Unit):
	case IsRootID(a.Unit):
		v.add(item, "unit %s is not the organization root %s", a.Unit, v.root)
	case !v.hasUnit(a.Unit):
		v.add(item, "unit %s is not one of the units", a.Unit)
	}
}

// checkName checks a human-readable name: printable, bounded, and present when
// required.
func (v *validator) checkName(item, field, s string, max int, required bool) {
	switch {
	case s == "":
		if required {
			v.add(item, "%s is missing", field)
		}
	case !printable(s):
		v.add(item, "%s must be printable UTF-8 text", field)
	case utf8.RuneCountInString(s) > max:
		v.add(item, "%s is longer than %d characters", field, max)
	}
}

func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// noSpace reports whether s is valid UTF-8 without spaces or control characters.
func noSpace(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// scopeSet is an entitlement's scope, prepared for "inside" questions.
type scopeSet struct {
	all bool // empty, or names the organization or the root
	ids map[string]bool
}

func (v *validator) scopeOf(e *Entitlement) scopeSet {
	sc := scopeSet{all: len(e.Scope) == 0, ids: make(map[string]bool, len(e.Scope))}
	for _, id := range e.Scope {
		sc.ids[id] = true
		if id == v.s.Organization.ID || v.isRootRef(id) {
			sc.all = true
		}
	}
	return sc
}

// inside reports whether target lies inside the scope: it, or an OU above it, is
// in the scope, or the scope is the whole organization. The organization (or
// root) as a target is inside only a whole-organization scope. A target whose
// parent chain is broken counts as inside: the broken chain is the problem
// reported, not its consequences.
func (v *validator) inside(sc scopeSet, target string) bool {
	if sc.all || sc.ids[target] {
		return true
	}
	if target == v.s.Organization.ID || v.isRootRef(target) {
		return false
	}
	unit := target
	if i, ok := v.accounts[target]; ok {
		unit = v.s.Organization.Accounts[i].Unit
	}
	if unit == "" || v.isRootRef(unit) {
		return false
	}
	if _, ok := v.units[unit]; !ok || v.unitOK[unit] != unitOK {
		return true
	}
	// The chain is known to reach the root, so this walk ends.
	for {
		i, ok := v.units[unit]
		if !ok {
			return false
		}
		if sc.ids[unit] {
			return true
		}
		unit = v.s.Organization.Units[i].Parent
	}
}

// isTarget reports whether id names something a scope or share can name.
func (v *validator) isTarget(id string) bool {
	return id != "" && (id == v.s.Organization.ID || v.isRootRef(id) || v.hasUnit(id) || v.hasAccount(id))
}

func (v *validator) entitlements() {
	first := make(map[string]int, len(v.s.Entitlements))
	for i := range v.s.Entitlements {
		e := &v.s.Entitlements[i]
		item := entitlementItem(i, e)
		if !IsEntitlementName(e.Name) {
			v.add(item, "name %q must be 1 to 63 lowercase letters, digits or -, starting and ending with a letter or digit", e.Name)
		} else if j, dup := first[e.Name]; dup {
			v.add(item, "duplicate name (also entitlements[%d])", j)
		} else {
			first[e.Name] = i
		}
		v.entitlement(item, e)
	}
}

func (v *validator) entitlement(item string, e *Entitlement) {
	switch {
	case e.Model == "":
		v.add(item, "model is missing")
	case len(e.Model) > maxModelLen:
		v.add(item, "model is longer than %d characters", maxModelLen)
	case !noSpace(e.Model):
		v.add(item, "model must not contain spaces or control characters")
	}
	if e.Region != "" && !isRegion(e.Region) {
		v.add(item, "region %q is not a region name (lowercase letters, digits and -)", e.Region)
	}
	if len(e.Description) > maxDescriptionLen {
		v.add(item, "description is longer than %d bytes", maxDescriptionLen)
	} else if !utf8.ValidString(e.Description) {
		v.add(item, "description is not valid UTF-8")
	}
	switch e.State {
	case "", EntitlementActive, EntitlementSuspended:
	default:
		v.add(item, "state %q must be active or suspended", e.State)
	}
	seenScope := make(map[string]bool, len(e.Scope))
	scopeOK := true
	for _, id := range e.Scope {
		switch {
		case seenScope[id]:
			v.add(item, "scope names %s twice", id)
		case !v.isTarget(id):
			v.add(item, "scope entry %q is not the organization, its root, or one of its units or accounts", id)
			scopeOK = false
		}
		seenScope[id] = true
	}
	v.limits(item, &e.Limits)
	v.operations(item, e.Operations)
	v.asyncOutputPrefixes(item, e.AsyncOutputPrefixes)
	v.serviceTiers(item, e.ServiceTiers)
	v.guardrails(item, e.Guardrails)
	sc := v.scopeOf(e)
	seen := make(map[string]bool, len(e.Shares))
	for _, sh := range e.Shares {
		switch {
		case seen[sh.Target]:
			v.add(item, "share target %s appears twice", sh.Target)
		case !v.isTarget(sh.Target):
			v.add(item, "share target %q is not the organization, its root, or one of its units or accounts", sh.Target)
		case scopeOK && !v.inside(sc, sh.Target):
			v.add(item, "share target %s is outside the scope", sh.Target)
		}
		seen[sh.Target] = true
		if sh.MonthlyTokens < 0 {
			v.add(item, "share %s: monthly_tokens must not be negative", sh.Target)
		}
		v.sharePrincipals(item, sh)
	}
}

func isRegion(s string) bool {
	if len(s) > maxRegionLen || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isLowerAlnum(c) && c != '-' {
			return false
		}
	}
	return true
}

func (v *validator) limits(item string, l *Limits) {
	for _, f := range [...]struct {
		name string
		n    int64
	}{
		{"monthly_tokens", l.MonthlyTokens},
		{"account_monthly_tokens", l.AccountMonthlyTokens},
		{"requests_per_minute", l.RequestsPerMinute},
		{"tokens_per_minute", l.TokensPerMinute},
	} {
		if f.n < 0 {
			v.add(item, "limits.%s must not be negative", f.name)
		}
	}
	switch l.Count {
	case "", CountTotal, CountInput, CountOutput:
	default:
		v.add(item, "limits.count %q must be total, input or output", l.Count)
	}
	switch l.OnStoreUnavailable {
	case "", FailClosed, FailOpen:
	default:
		v.add(item, "limits.on_store_unavailable %q must be fail_closed or fail_open", l.OnStoreUnavailable)
	}
	switch l.Estimate {
	case "", EstimateTypical, EstimateStrict:
	default:
		v.add(item, "limits.estimate %q must be typical or strict", l.Estimate)
	}
	prev := 0
	for _, t := range l.AlertThresholds {
		if t < 1 || t > 100 {
			v.add(item, "limits.alert_thresholds: %d is not a percentage from 1 to 100", t)
			continue
		}
		if t <= prev {
			v.add(item, "limits.alert_thresholds must be strictly increasing (%d after %d)", t, prev)
		}
		prev = t
	}
}

func (v *validator) operations(item string, ops []string) {
	seen := make(map[string]bool, len(ops))
	for _, name := range ops {
		op, ok := bedrock.ParseOperation(name)
		switch {
		case !ok || !v.runtime[op]:
			v.add(item, "operation %q is not a runtime operation", name)
		case seen[name]:
			v.add(item, "operation %s is listed twice", name)
		}
		seen[name] = true
	}
}

func (v *validator) asyncOutputPrefixes(item string, prefixes []string) {
	if len(prefixes) > maxAsyncOutputPrefixes {
		v.add(item, "async_output_prefixes lists more than %d prefixes", maxAsyncOutputPrefixes)
		return
	}
	seen := make(map[string]bool, len(prefixes))
	for _, p := range prefixes {
		switch {
		case p == AnyAsyncOutput:
			if len(prefixes) > 1 {
				v.add(item, "async_output_prefixes: %q allows any destination and must be the only entry", AnyAsyncOutput)
			}
		case !IsAsyncOutputPrefix(p):
			v.add(item, "async_output_prefixes: %q is not s3://BUCKET[/PATH] (lowercase bucket name; path of letters, digits and -_.!'()=+,:@~ without empty, . or .. segments; {account} for the caller's account ID)", p)
		case seen[p]:
			v.add(item, "async_output_prefixes lists %s twice", p)
		}
		seen[p] = true
	}
}

func (v *validator) serviceTiers(item string, tiers []string) {
	seen := make(map[string]bool, len(tiers))
	for _, t := range tiers {
		switch {
		case t != bedrock.TierOptimized && !bedrock.IsServiceTier(t):
			v.add(item, "service tier %q must be priority, flex, reserved, default or optimized", t)
		case seen[t]:
			v.add(item, "service tier %s is listed twice", t)
		}
		seen[t] = true
	}
}

func (v *validator) guardrails(item string, refs []string) {
	seen := make(map[string]bool, len(refs))
	for _, g := range refs {
		switch _, ok := bedrock.ParseGuardrail(g); {
		case !ok:
			v.add(item, "guardrail %q is not a guardrail ID (lowercase letters and digits) or guardrail ARN", g)
		case seen[g]:
			v.add(item, "guardrail %s is listed twice", g)
		}
		seen[g] = true
	}
}

func (v *validator) credentials() {
	ids := make(map[string]int, len(v.s.Credentials))
	keys := make(map[string]int, len(v.s.Credentials))
	for i := range v.s.Credentials {
		c := &v.s.Credentials[i]
		item := credentialItem(i, c)
		v.credential(item, c)
		v.revokedCredential(item, c)
		if id := credentialID(c); id != "" {
			if !isCredentialID(id) {
				v.add(item, "id %q must be 1 to %d letters, digits, '.', '_' or '-'", id, maxCredentialID)
			} else if j, dup := ids[id]; dup {
				v.add(item, "duplicate id (also credentials[%d])", j)
			} else {
				ids[id] = i
			}
		}
		var key string
		switch c.Kind {
		case KindSigV4:
			key = c.AccessKeyID
		case KindAPIKey:
			key = c.KeySHA256
		}
		if key != "" {
			if j, dup := keys[key]; dup {
				what := "access_key_id"
				if c.Kind == KindAPIKey {
					what = "key_sha256"
				}
				v.add(item, "duplicate %s (also credentials[%d])", what, j)
			} else {
				keys[key] = i
			}
		}
	}
}

// credentialID is the credential's ID, or the one Normalize would give it.
func credentialID(c *Credential) string {
	if c.ID != "" {
		return c.ID
	}
	return c.DefaultID()
}

func isCredentialID(s string) bool {
	if len(s) == 0 || len(s) > maxCredentialID {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func (v *validator) credential(item string, c *Credential) {
	switch {
	case !IsAccountID(c.Account):
		v.add(item, "account %q is not a 12-digit account ID", c.Account)
	case !v.hasAccount(c.Account):
		v.add(item, "account %s is not one of the accounts", c.Account)
	}
	if utf8.RuneCountInString(c.Label) > maxLabelLen || !printable(c.Label) {
		v.add(item, "label must be at most %d printable characters", maxLabelLen)
	}
	switch c.Kind {
	case KindSigV4:
		if !IsAccessKeyID(c.AccessKeyID) {
			v.add(item, "access_key_id %q must be GW and 18 uppercase letters or digits", c.AccessKeyID)
		}
		switch {
		case c.Secret == "" && c.SecretEnv != "":
			v.add(item, "secret_env %s has not been resolved", c.SecretEnv)
		case c.Secret == "":
			v.add(item, "secret is missing (set secret or secret_env)")
		case len(c.Secret) < minSecretLen || len(c.Secret) > maxSecretLen:
			v.add(item, "secret must be %d to %d characters", minSecretLen, maxSecretLen)
		case !noSpace(c.Secret):
			v.add(item, "secret must not contain spaces or control characters")
		}
		if c.KeySHA256 != "" || c.Key != "" || c.KeyEnv != "" {
			v.add(item, "key, key_env and key_sha256 belong to api_key credentials")
		}
	case KindAPIKey:
		switch {
		case c.KeySHA256 == "" && (c.Key != "" || c.KeyEnv != ""):
			v.add(item, "key has not been resolved to key_sha256")
		case c.KeySHA256 == "":
			v.add(item, "key_sha256 is missing (set key_sha256, key or key_env)")
		case !isKeySHA256(c.KeySHA256):
			v.add(item, "key_sha256 must be 64 lowercase hex digits")
		}
		if c.AccessKeyID != "" || c.Secret != "" || c.SecretEnv != "" {
			v.add(item, "access_key_id, secret and secret_env belong to sigv4 credentials")
		}
	default:
		v.add(item, "kind %q must be sigv4 or api_key", c.Kind)
	}
}

// maxPrincipals bounds the patterns of one share or of the deny list: every
// call may test them all.
const maxPrincipals = 256

// sharePrincipals checks a share's principal patterns: well-formed, no
// duplicates, and, when the share targets one account, of that account (a
// pattern of another account could never match).
func (v *validator) sharePrincipals(item string, sh Share) {
	if len(sh.Principals) > maxPrincipals {
		v.add(item, "share %s: more than %d principals", sh.Target, maxPrincipals)
	}
	seen := make(map[string]bool, len(sh.Principals))
	for _, p := range sh.Principals {
		if err := CheckPrincipalPattern(p); err != nil {
			v.add(item, "share %s: %v", sh.Target, err)
			continue
		}
		if seen[p] {
			v.add(item, "share %s: principal %s appears twice", sh.Target, p)
		}
		seen[p] = true
		if pr, _ := ParsePrincipal(p); IsAccountID(sh.Target) && pr.Account != sh.Target {
			v.add(item, "share %s: principal %s is of another account", sh.Target, p)
		}
	}
}

func (v *validator) deniedPrincipals() {
	const item = "denied_principals"
	if len(v.s.DeniedPrincipals) > maxPrincipals {
		v.add(item, "more than %d principals", maxPrincipals)
	}
	seen := make(map[string]bool, len(v.s.DeniedPrincipals))
	for _, p := range v.s.DeniedPrincipals {
		if err := CheckPrincipalPattern(p); err != nil {
			v.add(item, "%v", err)
			continue
		}
		if seen[p] {
			v.add(item, "principal %s appears twice", p)
		}
		seen[p] = true
	}
}
