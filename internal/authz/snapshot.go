// Package authz owns the authorization snapshot: an immutable, indexed view of
// the organization tree, the managed entitlements with their shares, and the
// credentials, built once per state version. Every data-plane request is
// authenticated and authorized against one snapshot without touching Redis.
package authz

import (
	"encoding/hex"
	"fmt"
	"slices"
	"strings"

	"github.com/bedrock-gateway/gateway/internal/authn"
	"github.com/bedrock-gateway/gateway/internal/bedrock"
	"github.com/bedrock-gateway/gateway/internal/state"
)

// Snapshot is an immutable view of one state version. It is safe for concurrent
// use; replace it (e.g. through an atomic.Pointer) to change anything.
//
// Every organization node (the organization, its root, OUs and accounts) gets a
// small integer, so a decision is a walk over the account's precomputed
// ancestor list with one integer-keyed map lookup per level.
type Snapshot struct {
	version uint64
	st      *state.State

	nodes    []string // node → organization, root, OU or account ID
	accounts map[string]*Account

	entitlements map[string]*Entitlement
	sorted       []*Entitlement            // by name; Entitlement.index is the position
	byModel      map[string][]*Entitlement // upstream model → entitlements, by name
	byTarget     [][]int32                 // node → indexes in sorted of entitlements shared with it

	byAccessKey map[string]*authn.Credential
	byKeyHash   map[[32]byte]*authn.Credential

	// denied are the principal deny list's patterns, parsed once.
	denied []state.Principal
}

// Account is a member account as decisions see it.
type Account struct {
	ID, Name, Unit string
	// Team is the account's team, defaulting to the name of its OU, or "root".
	Team string
	// Inactive is set for an account AWS Organizations reports suspended or
	// closed: it is denied everything, its record kept.
	Inactive bool
	// Path lists the OU IDs from the account's unit up to the top, then the root
	// ID (when known), then the organization ID. Accounts of one unit share it:
	// treat it as read-only.
	Path []string

	node      uint32
	ancestors []uint32 // the nodes of Path, shared by the accounts of one unit
}

// Entitlement is a managed entitlement as decisions see it.
type Entitlement struct {
	Name, Model, Region, Description, State string
	Limits                                  state.Limits
	// AsyncOutputPrefixes are where StartAsyncInvoke may write (see
	// state.AsyncOutputAllowed); read-only.
	AsyncOutputPrefixes []string
	// ProfileMode is billing.profiles with its default: per_team,
	// per_entitlement or none.
	ProfileMode string

	index  int32
	active bool
	ops    uint32 // bit per bedrock.Operation
	// shares maps each share target inside the scope to its monthly cap. Shares
	// outside the scope are dropped at build time, so a share that covers an
	// account also proves the account is inside the scope.
	shares map[uint32]int64
	// principals maps the share targets whose share names principals to
	// their parsed patterns; nil when no share does (the common case costs
	// one nil check).
	principals map[uint32][]state.Principal
	// scope is the scope as a node set (nil: the whole organization), kept
	// only to tell a denial's reason in the log.
	scope map[uint32]bool
	// filter is a one-hash Bloom filter over the keys of shares (about 8 bits per
	// share): most levels of an account's path hold no share, and one bit test
	// in a cache line or two is far cheaper than a map probe into cold memory.
	filter      []uint64
	filterShift uint8

	// tiers are the service tiers (and "optimized") members may ask for
	// beyond the default tier; guardrails the guardrails they may name; hub
	// is the hub account, in which bare guardrail IDs resolve.
	tiers      []string
	guardrails []bedrock.GuardrailRef
	hub        string
}

// fibonacci spreads sequential node numbers over the filter.
const fibonacci = 0x9E3779B1

func (e *Entitlement) mayShare(n uint32) bool {
	b := (n * fibonacci) >> e.filterShift
	return e.filter[b>>6]&(1<<(b&63)) != 0
}

// buildFilter sizes and fills the filter once the shares are known.
func (e *Entitlement) buildFilter() {
	bits := 64
	for bits < 8*len(e.shares) {
		bits *= 2
	}
	e.filter = make([]uint64, bits/64)
	e.filterShift = uint8(32 - bitsLen(bits))
	for n := range e.shares {
		b := (n * fibonacci) >> e.filterShift
		e.filter[b>>6] |= 1 << (b & 63)
	}
}

// bitsLen is log2 of a power of two.
func bitsLen(pow2 int) int {
	n := 0
	for pow2 > 1 {
		pow2 >>= 1
		n++
	}
	return n
}

// Allows reports whether the entitlement allows op. The control-plane model
// operations (ListFoundationModels, GetFoundationModel) are always allowed:
// seeing an entitlement is governed by sharing alone.
func (e *Entitlement) Allows(op bedrock.Operation) bool {
	return op < 32 && e.ops&(1<<op) != 0
}

// AllowsOptions reports whether the entitlement allows what a request chooses:
// its service tier (the default tier always), latency-optimized inference
// (when "optimized" is listed) and every guardrail it names.
func (e *Entitlement) AllowsOptions(o bedrock.RequestOptions) bool {
	if o.ServiceTier != "" && o.ServiceTier != bedrock.TierDefault && !slices.Contains(e.tiers, o.ServiceTier) {
		return false
	}
	if o.Latency == bedrock.LatencyOptimized && !slices.Contains(e.tiers, bedrock.TierOptimized) {
		return false
	}
	for _, g := range o.Guardrails {
		if !e.AllowsGuardrail(g) {
			return false
		}
	}
	return true
}

// AllowsGuardrail reports whether the entitlement lists the guardrail ref (an
// ID or an ARN). An ID and an ARN name the same guardrail when the IDs are
// equal and the ARN is in the hub account, where Bedrock resolves a bare ID
// for the hub's calls; two ARNs must be equal.
func (e *Entitlement) AllowsGuardrail(ref string) bool {
	r, ok := bedrock.ParseGuardrail(ref)
	if !ok {
		return false
	}
	for _, g := range e.guardrails {
		if g.ID != r.ID {
			continue
		}
		switch {
		case g.ARN == "" && r.ARN == "":
			return true
		case g.ARN != "" && r.ARN != "":
			if g.ARN == r.ARN {
				return true
			}
		case g.ARN != "":
			if g.Account == e.hub {
				return true
			}
		default:
			if r.Account == e.hub {
				return true
			}
		}
	}
	return false
}

// Active reports whether the entitlement is active (not suspended).
func (e *Entitlement) Active() bool { return e.active }

// Build indexes st, which the caller has normalized and validated. It keeps a
// private deep copy, so later changes to st do not affect the snapshot. Build
// still fails on structural problems that would make decisions ill-defined
// (cycles, unknown parents or targets, malformed key hashes).
func Build(st *state.State, version uint64) (*Snapshot, error) {
	st = st.Clone()
	if st == nil {
		st = &state.State{}
	}
	// Idempotent; it guarantees the defaults (limits, root, credential IDs)
	// consumers of the snapshot rely on even if the caller forgot.
	st.Normalize()
	b := builder{
		s: &Snapshot{
			version:      version,
			st:           st,
			accounts:     make(map[string]*Account, len(st.Organization.Accounts)),
			entitlements: make(map[string]*Entitlement, len(st.Entitlements)),
			byModel:      make(map[string][]*Entitlement, len(st.Entitlements)),
			byAccessKey:  make(map[string]*authn.Credential),
			byKeyHash:    make(map[[32]byte]*authn.Credential),
		},
		index: make(map[string]uint32, 2+len(st.Organization.Units)+len(st.Organization.Accounts)),
	}
	if err := b.organization(); err != nil {
		return nil, err
	}
	if err := b.entitlements(); err != nil {
		return nil, err
	}
	if err := b.credentials(); err != nil {
		return nil, err
	}
	for _, p := range st.DeniedPrincipals {
		pr, ok := state.ParsePrincipal(p)
		if !ok {
			return nil, fmt.Errorf("building snapshot: malformed denied principal %q", p)
		}
		b.s.denied = append(b.s.denied, pr)
	}
	return b.s, nil
}

type builder struct {
	s     *Snapshot
	index map[string]uint32 // ID → node
	// Per OU (by index in st.Organization.Units): its chain of nodes, the OU
	// itself first, then its ancestors, the root and the organization; and the
	// same as IDs.
	unitChain [][]uint32
	unitPath  [][]string
	top       []uint32 // root (if known), then the organization
	topIDs    []string
	chains    [][]uint32 // node → its chain for OUs, root and organization; nil for accounts
}

func (b *builder) node(id string) uint32 {
	n := uint32(len(b.s.nodes))
	b.s.nodes = append(b.s.nodes, id)
	b.index[id] = n
	return n
}

func (b *builder) organization() error {
	o := &b.s.st.Organization
	// Nodes of the top, innermost first: root, then organization.
	if o.Root != "" {
		b.top = append(b.top, b.node(o.Root))
		b.topIDs = append(b.topIDs, o.Root)
	}
	if o.ID != "" {
		b.top = append(b.top, b.node(o.ID))
		b.topIDs = append(b.topIDs, o.ID)
	}
	unitIdx := make(map[string]int, len(o.Units))
	for i, u := range o.Units {
		if _, dup := b.index[u.ID]; dup {
			return fmt.Errorf("building snapshot: duplicate ID %s", u.ID)
		}
		b.node(u.ID)
		unitIdx[u.ID] = i
	}
	b.unitChain = make([][]uint32, len(o.Units))
	b.unitPath = make([][]string, len(o.Units))
	const (
		unvisited = iota
		visiting
		done
	)
	mark := make([]uint8, len(o.Units))
	var visit func(i int) error
	visit = func(i int) error {
		switch mark[i] {
		case done:
			return nil
		case visiting:
			return fmt.Errorf("building snapshot: unit %s is part of a cycle", o.Units[i].ID)
		}
		mark[i] = visiting
		u := &o.Units[i]
		var parentChain []uint32
		var parentPath []string
		if isTop(u.Parent, o.Root) {
			parentChain, parentPath = b.top, b.topIDs
		} else {
			p, ok := unitIdx[u.Parent]
			if !ok {
				return fmt.Errorf("building snapshot: unit %s has unknown parent %s", u.ID, u.Parent)
			}
			if err := visit(p); err != nil {
				return err
			}
			parentChain, parentPath = b.unitChain[p], b.unitPath[p]
		}
		chain := make([]uint32, 0, 1+len(parentChain))
		chain = append(append(chain, b.index[u.ID]), parentChain...)
		path := make([]string, 0, 1+len(parentPath))
		path = append(append(path, u.ID), parentPath...)
		b.unitChain[i], b.unitPath[i] = chain, path
		mark[i] = done
		return nil
	}
	for i := range o.Units {
		if err := visit(i); err != nil {
			return err
		}
	}
	for i := range o.Accounts {
		a := &o.Accounts[i]
		if _, dup := b.index[a.ID]; dup {
			return fmt.Errorf("building snapshot: duplicate ID %s", a.ID)
		}
		acct := &Account{ID: a.ID, Name: a.Name, Unit: a.Unit, Team: a.Team, Inactive: !a.Active(), node: b.node(a.ID)}
		if isTop(a.Unit, o.Root) {
			acct.ancestors, acct.Path = b.top, b.topIDs
			if acct.Team == "" {
				acct.Team = "root"
			}
		} else {
			u, ok := unitIdx[a.Unit]
			if !ok {
				return fmt.Errorf("building snapshot: account %s is in unknown unit %s", a.ID, a.Unit)
			}
			acct.ancestors, acct.Path = b.unitChain[u], b.unitPath[u]
			if acct.Team == "" {
				acct.Team = o.Units[u].Name
			}
		}
		b.s.accounts[a.ID] = acct
	}
	b.s.byTarget = make([][]int32, len(b.s.nodes))
	b.chains = make([][]uint32, len(b.s.nodes))
	for i, n := range b.top {
		b.chains[n] = b.top[i:]
	}
	for _, c := range b.unitChain {
		b.chains[c[0]] = c
	}
	return nil
}

// isTop reports whether a parent reference names the root (empty, the root, or
// any root ID when the state names none).
func isTop(parent, root string) bool {
	return parent == "" || parent == root || (root == "" && state.IsRootID(parent))
}

// inScope reports whether node n, or one of its ancestors, is in scope.
func (b *builder) inScope(scope map[uint32]bool, n uint32) bool {
	if scope[n] {
		return true
	}
	chain := b.chains[n]
	if chain == nil { // an account
		chain = b.s.accounts[b.s.nodes[n]].ancestors
	}
	return slices.ContainsFunc(chain, func(m uint32) bool { return scope[m] })
}

func (b *builder) entitlements() error {
	src := b.s.st.Entitlements
	order := make([]int, len(src))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(x, y int) int { return strings.Compare(src[x].Name, src[y].Name) })

	runtimeOps := opMask(bedrock.RuntimeOperations())
	controlOps := opMask([]bedrock.Operation{bedrock.OpListFoundationModels, bedrock.OpGetFoundationModel})
	b.s.sorted = make([]*Entitlement, 0, len(src))
	for _, i := range order {
		se := &src[i]
		if _, dup := b.s.entitlements[se.Name]; dup {
			return fmt.Errorf("building snapshot: duplicate entitlement %s", se.Name)
		}
		e := &Entitlement{
			Name: se.Name, Model: se.Model, Region: se.Region, Description: se.Description,
			State: se.State, Limits: se.Limits,
			index:  int32(len(b.s.sorted)),
			active: se.State == "" || se.State == state.EntitlementActive,
			shares: make(map[uint32]int64, len(se.Shares)),
		}
		if e.State == "" {
			e.State = state.EntitlementActive
		}
		e.AsyncOutputPrefixes = se.AsyncOutputPrefixes // st is the snapshot's own copy
		e.ProfileMode = se.Billing.ProfileMode()
		e.tiers = slices.Clone(se.ServiceTiers)
		e.hub = b.s.st.Organization.HubAccount
		for _, g := range se.Guardrails {
			ref, ok := bedrock.ParseGuardrail(g)
			if !ok {
				return fmt.Errorf("building snapshot: entitlement %s: malformed guardrail %q", se.Name, g)
			}
			e.guardrails = append(e.guardrails, ref)
		}
		if len(se.Operations) == 0 {
			e.ops = runtimeOps
		}
		for _, name := range se.Operations {
			op, ok := bedrock.ParseOperation(name)
			if !ok {
				return fmt.Errorf("building snapshot: entitlement %s: unknown operation %q", se.Name, name)
			}
			e.ops |= opMask([]bedrock.Operation{op}) & runtimeOps
		}
		e.ops |= controlOps

		// The scope as a node set; nil means the whole organization.
		var scope map[uint32]bool
		if len(se.Scope) > 0 {
			scope = make(map[uint32]bool, len(se.Scope))
			for _, id := range se.Scope {
				n, ok := b.index[id]
				if !ok {
					return fmt.Errorf("building snapshot: entitlement %s: unknown scope entry %s", se.Name, id)
				}
				if slices.Contains(b.top, n) {
					scope = nil
					break
				}
				scope[n] = true
			}
		}
		e.scope = scope
		for _, sh := range se.Shares {
			n, ok := b.index[sh.Target]
			if !ok {
				return fmt.Errorf("building snapshot: entitlement %s: unknown share target %s", se.Name, sh.Target)
			}
			if scope != nil && !b.inScope(scope, n) {
				continue // outside the scope: validation reports it; never grant it
			}
			if _, dup := e.shares[n]; !dup {
				b.s.byTarget[n] = append(b.s.byTarget[n], e.index)
			}
			e.shares[n] = sh.MonthlyTokens
			if err := e.addPrincipals(n, sh.Principals); err != nil {
				return err
			}
		}
		e.buildFilter()
		b.s.entitlements[e.Name] = e
		b.s.sorted = append(b.s.sorted, e)
		key := modelKey(e.Model)
		b.s.byModel[key] = append(b.s.byModel[key], e)
	}
	return nil
}

func opMask(ops []bedrock.Operation) uint32 {
	var m uint32
	for _, op := range ops {
		if op < 32 {
			m |= 1 << op
		}
	}
	return m
}

// credentials indexes every credential whose key is not revoked. A revoked
// key is left out even when a credential carrying it is stored (a state
// written around the admin API's validation): it then fails exactly as an
// unknown key does.
func (b *builder) credentials() error {
	revoked := &b.s.st.Revoked
	revokedKeys := make(map[string]bool, len(revoked.AccessKeyIDs)+len(revoked.APIKeySHA256))
	for _, id := range revoked.AccessKeyIDs {
		revokedKeys[id] = true
	}
	for _, h := range revoked.APIKeySHA256 {
		revokedKeys[strings.ToLower(h)] = true
	}
	for i := range b.s.st.Credentials {
		c := &b.s.st.Credentials[i]
		if (c.Kind == state.KindSigV4 && revokedKeys[c.AccessKeyID]) || (c.Kind == state.KindAPIKey && revokedKeys[strings.ToLower(c.KeySHA256)]) {
			continue
		}
		ac := &authn.Credential{ID: c.ID, Account: c.Account, Label: c.Label, Kind: c.Kind, Secret: c.Secret}
		if c.ExpiresAt != nil {
			ac.ExpiresAt = *c.ExpiresAt
		}
		if ac.ID == "" {
			ac.ID = c.DefaultID()
		}
		switch c.Kind {
		case state.KindSigV4:
			if _, dup := b.s.byAccessKey[c.AccessKeyID]; dup || c.AccessKeyID == "" {
				return fmt.Errorf("building snapshot: credential %s: missing or duplicate access key ID", ac.ID)
			}
			b.s.byAccessKey[c.AccessKeyID] = ac
		case state.KindAPIKey:
			var sum [32]byte
			if n, err := hex.Decode(sum[:], []byte(c.KeySHA256)); err != nil || n != len(sum) || len(c.KeySHA256) != 2*len(sum) {
				return fmt.Errorf("building snapshot: credential %s: key_sha256 is not 64 hex digits", ac.ID)
			}
			if _, dup := b.s.byKeyHash[sum]; dup {
				return fmt.Errorf("building snapshot: credential %s: duplicate key_sha256", ac.ID)
			}
			b.s.byKeyHash[sum] = ac
		default:
			return fmt.Errorf("building snapshot: credential %s: unknown kind %q", ac.ID, c.Kind)
		}
	}
	return nil
}

// Version is the state version the snapshot was built from.
func (s *Snapshot) Version() uint64 { return s.version }

// State is the state the snapshot was built from (a private copy). Treat it as
// read-only: the snapshot's indexes do not follow changes to it.
func (s *Snapshot) State() *state.State { return s.st }

// ByAccessKeyID finds a sigv4 credential (authn.Lookup).
func (s *Snapshot) ByAccessKeyID(id string) (*authn.Credential, bool) {
	c, ok := s.byAccessKey[id]
	return c, ok
}

// ByAPIKeyHash finds an api_key credential by the SHA-256 of the key (authn.Lookup).
func (s *Snapshot) ByAPIKeyHash(sum [32]byte) (*authn.Credential, bool) {
	c, ok := s.byKeyHash[sum]
	return c, ok
}

var _ authn.Lookup = (*Snapshot)(nil)

// Account finds a member account.
func (s *Snapshot) Account(id string) (*Account, bool) {
	a, ok := s.accounts[id]
	return a, ok
}

// Entitlement finds an entitlement by name, whatever its state or shares.
func (s *Snapshot) Entitlement(name string) (*Entitlement, bool) {
	e, ok := s.entitlements[name]
	return e, ok
}

// Entitlements lists every entitlement, sorted by name. Treat it as read-only.
func (s *Snapshot) Entitlements() []*Entitlement { return s.sorted }

// HasCaps reports whether any monthly cap applies to the entitlement: its
// own, the per-account default, or a share's.
func (e *Entitlement) HasCaps() bool {
	if e.Limits.MonthlyTokens > 0 || e.Limits.AccountMonthlyTokens > 0 {
		return true
	}
	for _, c := range e.shares {
		if c > 0 {
			return true
		}
	}
	return false
}
