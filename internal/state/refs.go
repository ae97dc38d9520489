package state

import "slices"

// References names everything in s that refers to id (an OU or account ID), so
// the admin API can refuse to delete something still in use and say why. The
// entries read like "entitlement x scope", "entitlement x share", "account y (in
// OU)", "unit z (parent)" and "credential c"; nil means nothing refers to id.
func (s *State) References(id string) []string {
	if id == "" {
		return nil
	}
	var refs []string
	o := &s.Organization
	if o.HubAccount == id {
		refs = append(refs, "organization hub_account")
	}
	for _, u := range o.Units {
		if u.Parent == id {
			refs = append(refs, "unit "+u.ID+" (parent)")
		}
	}
	for _, a := range o.Accounts {
		if a.Unit == id {
			refs = append(refs, "account "+a.ID+" (in OU)")
		}
	}
	for _, e := range s.Entitlements {
		if slices.Contains(e.Scope, id) {
			refs = append(refs, "entitlement "+e.Name+" scope")
		}
		for _, sh := range e.Shares {
			if sh.Target == id {
				refs = append(refs, "entitlement "+e.Name+" share")
				break
			}
		}
	}
	for i := range s.Credentials {
		if c := &s.Credentials[i]; c.Account == id {
			refs = append(refs, "credential "+credentialID(c))
		}
	}
	return refs
}
