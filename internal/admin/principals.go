package admin

import (
	"net/http"
	"slices"

	"github.com/bedrock-gateway/gateway/internal/state"
)

// deniedPrincipalsBody is the deny list as the API shows it.
type deniedPrincipalsBody struct {
	DeniedPrincipals []string `json:"denied_principals"`
	StateVersion     uint64   `json:"state_version"`
}

// denyRequest adds one pattern to the deny list.
type denyRequest struct {
	Principal string `json:"principal"`
}

func (s *server) listDeniedPrincipals(w http.ResponseWriter, r *http.Request) error {
	st, v, err := s.load(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, deniedPrincipalsBody{DeniedPrincipals: nonNilStrings(st.DeniedPrincipals), StateVersion: v})
	return nil
}

// denyPrincipal adds a pattern to the deny list; it is in force on this
// replica when the call returns, on every other within the sync interval.
// Denying a pattern already listed changes nothing.
func (s *server) denyPrincipal(w http.ResponseWriter, r *http.Request) error {
	var req denyRequest
	if err := readJSON(w, r, &req); err != nil {
		return err
	}
	if err := state.CheckPrincipalPattern(req.Principal); err != nil {
		return errBadRequest("%v", err)
	}
	var list []string
	v, _, err := s.update(r, "principal.deny", func(st *state.State) error {
		if slices.Contains(st.DeniedPrincipals, req.Principal) {
			list = st.DeniedPrincipals
			return errUnchanged
		}
		st.DeniedPrincipals = append(st.DeniedPrincipals, req.Principal)
		if err := validate(st, "denying principal "+req.Principal); err != nil {
			return err
		}
		list = st.DeniedPrincipals
		return nil
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, deniedPrincipalsBody{DeniedPrincipals: nonNilStrings(slices.Clone(list)), StateVersion: v})
	return nil
}

// allowPrincipal removes a pattern from the deny list (exactly as listed).
func (s *server) allowPrincipal(w http.ResponseWriter, r *http.Request) error {
	pattern := r.PathValue("pattern")
	v, _, err := s.update(r, "principal.allow", func(st *state.State) error {
		i := slices.Index(st.DeniedPrincipals, pattern)
		if i < 0 {
			return errNotFound("principal %q is not on the deny list", pattern)
		}
		st.DeniedPrincipals = slices.Delete(st.DeniedPrincipals, i, i+1)
		return nil
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, changeBody{StateVersion: v})
	return nil
}

func nonNilStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
