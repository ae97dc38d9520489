package admin

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/bedrock-gateway/gateway/internal/state"
)

type organizationBody struct {
	Organization state.Organization `json:"organization"`
	StateVersion uint64             `json:"state_version"`
}

func (s *server) getOrganization(w http.ResponseWriter, r *http.Request) error {
	st, v, err := s.load(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, organizationBody{Organization: nonNilOrg(st.Organization), StateVersion: v})
	return nil
}

func nonNilOrg(o state.Organization) state.Organization {
	if o.Units == nil {
		o.Units = []state.Unit{}
	}
	if o.Accounts == nil {
		o.Accounts = []state.Account{}
	}
	return o
}

// reference is one removed ID still in use, as reported by a refused PUT.
type reference struct {
	ID           string   `json:"id"`
	ReferencedBy []string `json:"referenced_by"`
}

// putOrganization replaces the organization. Removing an OU or account (or
// changing the organization or root ID) that is still referenced is refused
// with 409 naming every reference, unless force=true, which also removes the
// dangling shares, scope entries and credentials. Force never widens an
// entitlement: a scope that would become empty (the whole organization) is
// still refused.
func (s *server) putOrganization(w http.ResponseWriter, r *http.Request) error {
	force, err := boolQuery(r, "force")
	if err != nil {
		return err
	}
	var org state.Organization
	if err := readJSON(w, r, &org); err != nil {
		return err
	}
	var result state.Organization
	v, _, err := s.update(r, ActionReplaceOrganization, func(st *state.State) error {
		if err := ReplaceOrganization(st, org, force); err != nil {
			return err
		}
		result = cloneOrg(st.Organization)
		return nil
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, organizationBody{Organization: nonNilOrg(result), StateVersion: v})
	return nil
}

// ActionReplaceOrganization is the audit action of a replaced organization.
const ActionReplaceOrganization = "organization.replace"

// ReplaceOrganization makes org st's organization, as PUT
// /admin/v1/organization does (org sync in serve uses it inside its own
// store.Update): removing an ID still in use is refused unless force, which
// also drops the shares, scope entries and credentials naming it; the result
// is validated.
func ReplaceOrganization(st *state.State, org state.Organization, force bool) error {
	removed := removedIDs(&st.Organization, &org)
	st.Organization = cloneOrg(org)
	var refs []reference
	for _, id := range removed {
		if rs := st.References(id); len(rs) > 0 {
			refs = append(refs, reference{ID: id, ReferencedBy: rs})
		}
	}
	if len(refs) > 0 && !force {
		return &apiError{Status: http.StatusConflict, Code: codeConflict,
			Message: "the new organization removes IDs still in use: " + describeRefs(refs) +
				"; change those first, or repeat with ?force=true to also remove the shares, scope entries and credentials",
			Details: refs}
	}
	if force {
		if err := dropReferences(st, removed); err != nil {
			return err
		}
	}
	return validate(st, "the organization is invalid")
}

// removedIDs lists the IDs old has and new lacks: units, accounts, and the
// organization and root IDs when they change.
func removedIDs(old, new *state.Organization) []string {
	var out []string
	if old.ID != "" && old.ID != new.ID {
		out = append(out, old.ID)
	}
	if old.Root != "" && old.Root != new.Root && !slices.ContainsFunc(new.Units, func(u state.Unit) bool { return u.Parent == old.Root }) &&
		!slices.ContainsFunc(new.Accounts, func(a state.Account) bool { return a.Unit == old.Root }) {
		out = append(out, old.Root)
	}
	units := make(map[string]bool, len(new.Units))
	for _, u := range new.Units {
		units[u.ID] = true
	}
	for _, u := range old.Units {
		if !units[u.ID] {
			out = append(out, u.ID)
		}
	}
	accounts := make(map[string]bool, len(new.Accounts))
	for _, a := range new.Accounts {
		accounts[a.ID] = true
	}
	for _, a := range old.Accounts {
		if !accounts[a.ID] {
			out = append(out, a.ID)
		}
	}
	return out
}

// dropReferences removes the shares, scope entries and credentials naming the
// removed IDs. References inside the organization itself (child OUs, accounts
// in a removed OU, the hub account) are the caller's to fix; Validate reports
// them.
func dropReferences(st *state.State, removed []string) error {
	gone := make(map[string]bool, len(removed))
	for _, id := range removed {
		gone[id] = true
	}
	for i := range st.Entitlements {
		e := &st.Entitlements[i]
		e.Shares = slices.DeleteFunc(e.Shares, func(sh state.Share) bool { return gone[sh.Target] })
		if len(e.Scope) > 0 {
			e.Scope = slices.DeleteFunc(e.Scope, func(id string) bool { return gone[id] })
			if len(e.Scope) == 0 {
				return errConflict("entitlement %s: removing its whole scope would widen it to the whole organization; set its scope first", e.Name)
			}
		}
	}
	st.Credentials = slices.DeleteFunc(st.Credentials, func(c state.Credential) bool { return gone[c.Account] })
	return nil
}

func describeRefs(refs []reference) string {
	parts := make([]string, 0, len(refs))
	for _, r := range refs {
		parts = append(parts, fmt.Sprintf("%s (by %s)", r.ID, strings.Join(r.ReferencedBy, ", ")))
	}
	return strings.Join(parts, "; ")
}

func cloneOrg(o state.Organization) state.Organization {
	o.Units = slices.Clone(o.Units)
	o.Accounts = slices.Clone(o.Accounts)
	return o
}

// boolQuery reads an optional boolean query parameter.
func boolQuery(r *http.Request, name string) (bool, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, errBadRequest("query parameter %s=%q must be true or false", name, v)
	}
	return b, nil
}
