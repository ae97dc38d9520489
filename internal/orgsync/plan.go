package orgsync

import (
	"fmt"
	"slices"
	"strings"

	"github.com/bedrock-gateway/gateway/internal/state"
)

// Change ops: what a line of the plan does to the gateway's organization.
const (
	OpAdd    = "add"
	OpRemove = "remove"
	OpUpdate = "update"
	// OpKeep is a record AWS no longer has that is kept because it is still
	// in use (no --prune).
	OpKeep = "keep"
	// OpInactive is an account AWS reports suspended, closed or pending: its
	// record is kept as it is.
	OpInactive = "inactive"
)

// Change is one line of a plan.
type Change struct {
	Op     string `json:"op"`
	Kind   string `json:"kind"` // organization, ou or account
	ID     string `json:"id"`
	Detail string `json:"detail,omitempty"`
}

// Plan is what a sync would write and why.
type Plan struct {
	// Organization is the gateway's organization after the sync.
	Organization state.Organization `json:"organization"`
	// Changes are what differs from the gateway's organization; empty means
	// nothing to write.
	Changes []Change `json:"changes"`
	// Kept are OUs and accounts gone from AWS but kept because shares, scopes
	// or credentials still name them.
	Kept []Change `json:"kept"`
	// Inactive are accounts AWS reports in a state other than ACTIVE.
	Inactive []Change `json:"inactive"`
}

// PlanOptions configure NewPlan.
type PlanOptions struct {
	// Prune removes OUs and accounts gone from AWS even when they are still
	// in use (the admin API then drops their shares, scope entries and
	// credentials: PUT ?force=true).
	Prune bool
	// InUse lists what still names an ID (entitlement shares and scopes,
	// credentials); nil means nothing does.
	InUse func(id string) []string
}

// NewPlan merges snap into cur, the gateway's organization: the tree, names
// and tagged teams come from AWS; an untagged account keeps the team cur gives
// it (or none, which means its OU's name).
func NewPlan(cur state.Organization, snap *Snapshot, o PlanOptions) *Plan {
	p := &Plan{Changes: []Change{}, Kept: []Change{}, Inactive: []Change{}}
	next := snap.Organization
	next.Source = state.OrgSourceAWS
	next.Units = slices.Clone(next.Units)
	next.Accounts = slices.Clone(next.Accounts)

	curUnits := make(map[string]state.Unit, len(cur.Units))
	for _, u := range cur.Units {
		curUnits[u.ID] = u
	}
	curAccounts := make(map[string]state.Account, len(cur.Accounts))
	for _, a := range cur.Accounts {
		curAccounts[a.ID] = a
	}
	for i := range next.Accounts {
		a := &next.Accounts[i]
		if old, ok := curAccounts[a.ID]; ok && !snap.Tagged[a.ID] {
			a.Team = old.Team
		}
	}

	// Keep what AWS no longer has but is still in use, with the OUs it sits
	// in, so the admin API never drops shares or credentials behind the
	// operator's back.
	nextUnits := map[string]bool{}
	for _, u := range next.Units {
		nextUnits[u.ID] = true
	}
	nextAccounts := map[string]bool{}
	for _, a := range next.Accounts {
		nextAccounts[a.ID] = true
	}
	inUse := func(id string) []string {
		if o.Prune || o.InUse == nil {
			return nil
		}
		return o.InUse(id)
	}
	var keepUnit func(id, why string)
	keepUnit = func(id, why string) {
		u, ok := curUnits[id]
		if !ok || nextUnits[id] {
			return
		}
		nextUnits[id] = true
		next.Units = append(next.Units, u)
		p.Kept = append(p.Kept, Change{Op: OpKeep, Kind: "ou", ID: id, Detail: u.Name + ": " + why})
		keepUnit(u.Parent, "holds kept "+id)
	}
	for _, u := range cur.Units {
		if refs := inUse(u.ID); len(refs) > 0 {
			keepUnit(u.ID, "gone from AWS Organizations but used by "+strings.Join(refs, ", "))
		}
	}
	for _, a := range cur.Accounts {
		if nextAccounts[a.ID] {
			continue
		}
		refs := inUse(a.ID)
		if len(refs) == 0 {
			continue
		}
		nextAccounts[a.ID] = true
		next.Accounts = append(next.Accounts, a)
		p.Kept = append(p.Kept, Change{Op: OpKeep, Kind: "account", ID: a.ID,
			Detail: a.Name + ": gone from AWS Organizations but used by " + strings.Join(refs, ", ")})
		keepUnit(a.Unit, "holds kept account "+a.ID)
	}
	p.Organization = next

	// The differences.
	add := func(op, kind, id, detail string) {
		p.Changes = append(p.Changes, Change{Op: op, Kind: kind, ID: id, Detail: detail})
	}
	if cur.ID != next.ID {
		add(OpUpdate, "organization", next.ID, fmt.Sprintf("id %s", fromTo(cur.ID, next.ID)))
	}
	if cur.Source != next.Source {
		add(OpUpdate, "organization", next.ID, "source: now synced from AWS Organizations")
	}
	if cur.Root != next.Root {
		add(OpUpdate, "organization", next.ID, fmt.Sprintf("root %s", fromTo(cur.Root, next.Root)))
	}
	if cur.HubAccount != next.HubAccount {
		add(OpUpdate, "organization", next.ID, fmt.Sprintf("hub account %s", fromTo(cur.HubAccount, next.HubAccount)))
	}
	unitName := func(id string) string {
		if id == "" || id == cur.Root || id == next.Root {
			return "root"
		}
		for _, u := range next.Units {
			if u.ID == id {
				return u.Name + " (" + id + ")"
			}
		}
		if u, ok := curUnits[id]; ok {
			return u.Name + " (" + id + ")"
		}
		return id
	}
	parentOf := func(id, root string) string {
		if id == root {
			return ""
		}
		return id
	}
	for _, u := range next.Units {
		old, ok := curUnits[u.ID]
		if !ok {
			add(OpAdd, "ou", u.ID, u.Name+" under "+unitName(u.Parent))
			continue
		}
		var d []string
		if old.Name != u.Name {
			d = append(d, "renamed "+fromTo(old.Name, u.Name))
		}
		if parentOf(old.Parent, cur.Root) != parentOf(u.Parent, next.Root) {
			d = append(d, "moved from "+unitName(old.Parent)+" to "+unitName(u.Parent))
		}
		if len(d) > 0 {
			add(OpUpdate, "ou", u.ID, strings.Join(d, "; "))
		}
	}
	for _, u := range cur.Units {
		if !nextUnits[u.ID] {
			add(OpRemove, "ou", u.ID, u.Name)
		}
	}
	for _, a := range next.Accounts {
		old, ok := curAccounts[a.ID]
		if !ok {
			d := a.Name + " in " + unitName(a.Unit)
			if a.Team != "" {
				d += ", team " + a.Team
			}
			add(OpAdd, "account", a.ID, d)
			continue
		}
		var d []string
		if old.Name != a.Name {
			d = append(d, "renamed "+fromTo(old.Name, a.Name))
		}
		if parentOf(old.Unit, cur.Root) != parentOf(a.Unit, next.Root) {
			d = append(d, "moved from "+unitName(old.Unit)+" to "+unitName(a.Unit))
		}
		if old.Team != a.Team {
			d = append(d, "team "+fromTo(old.Team, a.Team))
		}
		if stateName(old.State) != stateName(a.State) {
			d = append(d, "state "+fromTo(stateName(old.State), stateName(a.State)))
		}
		if len(d) > 0 {
			add(OpUpdate, "account", a.ID, strings.Join(d, "; "))
		}
	}
	for _, a := range cur.Accounts {
		if !nextAccounts[a.ID] {
			add(OpRemove, "account", a.ID, a.Name)
		}
	}
	for _, a := range next.Accounts {
		if st, ok := snap.States[a.ID]; ok && st != AccountActive {
			p.Inactive = append(p.Inactive, Change{Op: OpInactive, Kind: "account", ID: a.ID,
				Detail: a.Name + ": " + st})
		}
	}
	return p
}

func stateName(s string) string {
	if s == "" {
		return state.AccountActive
	}
	return s
}

func fromTo(from, to string) string {
	q := func(s string) string {
		if s == "" {
			return "(none)"
		}
		return s
	}
	return q(from) + " -> " + q(to)
}
