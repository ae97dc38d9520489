package admin

import (
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
	"sort"
	"time"

	"github.com/bedrock-gateway/gateway/internal/state"
)

type entitlementBody struct {
	Entitlement state.Entitlement `json:"entitlement"`
	// StateVersion is the state version the answer reflects; after a
	// change, the version that holds it: the change is in force on a
	// replica serving this version or a later one.
	StateVersion uint64 `json:"state_version"`
}

// stamp is the server's time for created_at and updated_at: UTC, whole
// seconds, so it survives every encoding unchanged.
func (s *server) stamp() time.Time { return s.now().UTC().Truncate(time.Second) }

func findEntitlement(st *state.State, name string) int {
	return slices.IndexFunc(st.Entitlements, func(e state.Entitlement) bool { return e.Name == name })
}

func (s *server) listEntitlements(w http.ResponseWriter, r *http.Request) error {
	st, _, err := s.load(r.Context())
	if err != nil {
		return err
	}
	ents := st.Entitlements
	if ents == nil {
		ents = []state.Entitlement{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"entitlements": ents})
	return nil
}

func (s *server) getEntitlement(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	st, v, err := s.load(r.Context())
	if err != nil {
		return err
	}
	i := findEntitlement(st, name)
	if i < 0 {
		return errNotFound("entitlement %q does not exist", name)
	}
	writeJSON(w, http.StatusOK, entitlementBody{Entitlement: st.Entitlements[i], StateVersion: v})
	return nil
}

func (s *server) createEntitlement(w http.ResponseWriter, r *http.Request) error {
	var e state.Entitlement
	if err := readJSON(w, r, &e); err != nil {
		return err
	}
	if !state.IsEntitlementName(e.Name) {
		return errBadRequest("name %q must be 1 to 63 lowercase letters, digits or -, starting and ending with a letter or digit", e.Name)
	}
	now := s.stamp()
	e.CreatedAt, e.UpdatedAt = now, now
	var created state.Entitlement
	v, _, err := s.update(r, "entitlement.create", func(st *state.State) error {
		if findEntitlement(st, e.Name) >= 0 {
			return errConflict("entitlement %q already exists", e.Name)
		}
		st.Entitlements = append(st.Entitlements, cloneEntitlement(e))
		if err := validate(st, "entitlement "+e.Name+" is invalid"); err != nil {
			return err
		}
		created = cloneEntitlement(st.Entitlements[findEntitlement(st, e.Name)])
		return nil
	})
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/admin/v1/entitlements/"+e.Name)
	writeJSON(w, http.StatusCreated, entitlementBody{Entitlement: created, StateVersion: v})
	return nil
}

// patchableFields are the top-level entitlement fields PATCH may set; each
// given field replaces the stored one whole (limits included).
var patchableFields = []string{"description", "model", "region", "scope", "limits", "operations", "state", "async_output_prefixes", "service_tiers", "guardrails", "billing"}

func (s *server) patchEntitlement(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	var fields map[string]json.RawMessage
	if err := readJSON(w, r, &fields); err != nil {
		return err
	}
	if fields == nil {
		return errBadRequest("the body must be a JSON object of the fields to change: %v", patchableFields)
	}
	if raw, ok := fields["name"]; ok {
		var n string
		if err := json.Unmarshal(raw, &n); err != nil || n != name {
			return errBadRequest("name is immutable; create a new entitlement and delete this one instead")
		}
		delete(fields, "name")
	}
	var unknown []string
	for k := range fields {
		if !slices.Contains(patchableFields, k) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return errBadRequest("cannot patch %v; patchable fields: %v (shares have their own endpoints)", unknown, patchableFields)
	}
	if len(fields) == 0 {
		return errBadRequest("nothing to change; give at least one of %v", patchableFields)
	}
	// Decode into a scratch entitlement first, so a malformed field is a 400
	// before the store is touched.
	var patch state.Entitlement
	for k, raw := range fields {
		if err := decodeField(&patch, k, raw); err != nil {
			return err
		}
	}
	now := s.stamp()
	var updated state.Entitlement
	v, _, err := s.update(r, "entitlement.update", func(st *state.State) error {
		i := findEntitlement(st, name)
		if i < 0 {
			return errNotFound("entitlement %q does not exist", name)
		}
		e := &st.Entitlements[i]
		for k := range fields {
			applyField(e, &patch, k)
		}
		e.UpdatedAt = now
		if err := validate(st, "entitlement "+name+" is invalid"); err != nil {
			return err
		}
		updated = cloneEntitlement(st.Entitlements[i])
		return nil
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, entitlementBody{Entitlement: updated, StateVersion: v})
	return nil
}

// decodeField decodes one patched field into dst; JSON null resets the field.
func decodeField(dst *state.Entitlement, field string, raw json.RawMessage) error {
	if bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return nil
	}
	var target any
	switch field {
	case "description":
		target = &dst.Description
	case "model":
		target = &dst.Model
	case "region":
		target = &dst.Region
	case "scope":
		target = &dst.Scope
	case "limits":
		target = &dst.Limits
	case "operations":
		target = &dst.Operations
	case "state":
		target = &dst.State
	case "async_output_prefixes":
		target = &dst.AsyncOutputPrefixes
	case "service_tiers":
		target = &dst.ServiceTiers
	case "guardrails":
		target = &dst.Guardrails
	case "billing":
		target = &dst.Billing
	}
	if err := decodeJSON(raw, target); err != nil {
		return errBadRequest("field %s: %s", field, err.(*apiError).Message)
	}
	return nil
}

func applyField(dst, src *state.Entitlement, field string) {
	switch field {
	case "description":
		dst.Description = src.Description
	case "model":
		dst.Model = src.Model
	case "region":
		dst.Region = src.Region
	case "scope":
		dst.Scope = slices.Clone(src.Scope)
	case "limits":
		dst.Limits = src.Limits
		dst.Limits.AlertThresholds = slices.Clone(src.Limits.AlertThresholds)
	case "operations":
		dst.Operations = slices.Clone(src.Operations)
	case "state":
		dst.State = src.State
	case "async_output_prefixes":
		dst.AsyncOutputPrefixes = slices.Clone(src.AsyncOutputPrefixes)
	case "service_tiers":
		dst.ServiceTiers = slices.Clone(src.ServiceTiers)
	case "guardrails":
		dst.Guardrails = slices.Clone(src.Guardrails)
	case "billing":
		dst.Billing = src.Billing
	}
}

func (s *server) deleteEntitlement(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	v, _, err := s.update(r, "entitlement.delete", func(st *state.State) error {
		i := findEntitlement(st, name)
		if i < 0 {
			return errNotFound("entitlement %q does not exist", name)
		}
		st.Entitlements = slices.Delete(st.Entitlements, i, i+1)
		return validate(st, "deleting entitlement "+name)
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, changeBody{StateVersion: v})
	return nil
}

func cloneEntitlement(e state.Entitlement) state.Entitlement {
	e.Scope = slices.Clone(e.Scope)
	e.Operations = slices.Clone(e.Operations)
	e.AsyncOutputPrefixes = slices.Clone(e.AsyncOutputPrefixes)
	e.ServiceTiers = slices.Clone(e.ServiceTiers)
	e.Guardrails = slices.Clone(e.Guardrails)
	e.Shares = slices.Clone(e.Shares)
	e.Limits.AlertThresholds = slices.Clone(e.Limits.AlertThresholds)
	return e
}
