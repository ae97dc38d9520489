package admin

import (
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/bedrock-gateway/gateway/internal/state"
)

type applyResponse struct {
	Changes []state.Change `json:"changes"`
	// Applied is true when the changes were stored; false for a dry run and
	// when there was nothing to change.
	Applied bool   `json:"applied"`
	DryRun  bool   `json:"dry_run"`
	Version uint64 `json:"version"`
	// Warnings are things the operator should know about a change that was
	// nonetheless valid (a synced organization replaced by the file).
	Warnings []string `json:"warnings,omitempty"`
}

// apply makes the store match a state file. It replaces the organization
// when the file has one (never otherwise). Without prune it upserts the file's entitlements
// (with their shares) and credentials, leaving the others alone; with prune the
// store ends up exactly as the file says, except that revoked keys are never
// forgotten (and pruned credentials' keys join them). Timestamps of unchanged items are
// kept, so applying the same file twice changes nothing the second time.
func (s *server) apply(w http.ResponseWriter, r *http.Request) error {
	dryRun, err := boolQuery(r, "dry_run")
	if err != nil {
		return err
	}
	prune, err := boolQuery(r, "prune")
	if err != nil {
		return err
	}
	switch mt, err := mediaType(r); {
	case err != nil:
		return err
	case mt == "", mt == "application/json", mt == "application/yaml", mt == "application/x-yaml",
		mt == "text/yaml", mt == "text/x-yaml", mt == "text/plain":
	default:
		return unsupported(mt, "application/yaml or application/json")
	}
	data, err := readBody(w, r, maxLargeBody)
	if err != nil {
		return err
	}
	file, err := state.Parse(data)
	if err != nil {
		return errBadRequest("%v", err)
	}
	if err := checkResolved(file); err != nil {
		return err
	}
	// Inline keys are hashed here; the gateway never reads its own
	// environment on a client's behalf.
	if err := file.ResolveSecrets(func(string) (string, bool) { return "", false }); err != nil {
		return errValidation("the state file's credentials are invalid", err)
	}
	now := s.stamp()

	if dryRun {
		cur, v, err := s.load(r.Context())
		if err != nil {
			return err
		}
		_, changes, err := plan(cur, file, prune, now)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, applyResponse{Changes: changes, DryRun: true, Version: v, Warnings: applyWarnings(cur, changes)})
		return nil
	}
	var changes []state.Change
	var warnings []string
	v, applied, err := s.update(r, "apply", func(st *state.State) error {
		next, c, err := plan(st, file, prune, now)
		changes = c
		warnings = applyWarnings(st, c)
		if err != nil {
			return err
		}
		if len(c) == 0 {
			return errUnchanged
		}
		*st = *next
		return nil
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, applyResponse{Changes: changes, Applied: applied, Version: v, Warnings: warnings})
	return nil
}

// applyWarnings: a file whose organization section changes an organization
// that org sync wrote replaces it now, and the next sync writes AWS's back.
func applyWarnings(cur *state.State, changes []state.Change) []string {
	if cur.Organization.Source != state.OrgSourceAWS {
		return nil
	}
	for _, c := range changes {
		switch c.Kind {
		case state.KindOrganization, state.KindUnit, state.KindAccount:
			return []string{"the organization is synced from AWS Organizations (gateway org sync): " +
				"this file's organization section replaces it now, and the next sync overwrites it again; " +
				"leave the organization section out of the file to let sync own it"}
		}
	}
	return nil
}

// checkResolved refuses credentials that name environment variables: those
// belong to the client's environment, and the CLI resolves them before sending.
func checkResolved(file *state.State) error {
	var details []problem
	for i, c := range file.Credentials {
		idx := i
		if c.SecretEnv != "" {
			details = append(details, problem{Index: &idx, Value: c.SecretEnv,
				Problem: fmt.Sprintf("credentials[%d]: secret_env %s is not resolved", i, c.SecretEnv)})
		}
		if c.KeyEnv != "" {
			details = append(details, problem{Index: &idx, Value: c.KeyEnv,
				Problem: fmt.Sprintf("credentials[%d]: key_env %s is not resolved", i, c.KeyEnv)})
		}
	}
	if len(details) == 0 {
		return nil
	}
	return &apiError{Status: http.StatusBadRequest, Code: codeBadRequest,
		Message: "the state file names secrets by environment variable (secret_env, key_env); resolve them client-side: " +
			"`gateway apply -f FILE` reads them from your environment, or give secret / key_sha256 inline",
		Details: details}
}

// plan computes the state apply would store and the changes from cur to it.
// cur is not modified.
func plan(cur, file *state.State, prune bool, now time.Time) (*state.State, []state.Change, error) {
	next := &state.State{Organization: cloneOrg(file.Organization)}
	// A file without an organization section never touches the organization,
	// even with prune: org sync may own it, and prune is about the file's
	// entitlements and credentials.
	if isZeroOrg(&file.Organization) {
		next.Organization = cloneOrg(cur.Organization)
	}

	oldEnt := make(map[string]*state.Entitlement, len(cur.Entitlements))
	for i := range cur.Entitlements {
		oldEnt[cur.Entitlements[i].Name] = &cur.Entitlements[i]
	}
	fileEnts := make([]state.Entitlement, 0, len(file.Entitlements))
	inFile := make(map[string]bool, len(file.Entitlements))
	for _, e := range file.Entitlements {
		e = cloneEntitlement(e)
		if old := oldEnt[e.Name]; old != nil {
			e.CreatedAt, e.UpdatedAt = old.CreatedAt, old.UpdatedAt
		} else {
			e.CreatedAt = orNow(e.CreatedAt, now)
			e.UpdatedAt = orNow(e.UpdatedAt, now)
		}
		inFile[e.Name] = true
		fileEnts = append(fileEnts, e)
	}
	if !prune {
		for _, e := range cur.Entitlements {
			if !inFile[e.Name] {
				next.Entitlements = append(next.Entitlements, cloneEntitlement(e))
			}
		}
	}
	next.Entitlements = append(next.Entitlements, fileEnts...)

	oldCred := make(map[string]*state.Credential, len(cur.Credentials))
	for i := range cur.Credentials {
		oldCred[cur.Credentials[i].ID] = &cur.Credentials[i]
	}
	fileCreds := make([]state.Credential, 0, len(file.Credentials))
	credInFile := make(map[string]bool, len(file.Credentials))
	for _, c := range file.Credentials {
		if c.ID == "" {
			c.ID = c.DefaultID()
		}
		if old := oldCred[c.ID]; old != nil && c.ID != "" {
			keepSecret(&c, old)
			c.CreatedAt = old.CreatedAt
		} else {
			c.CreatedAt = orNow(c.CreatedAt, now)
		}
		if c.ExpiresAt != nil {
			t := *c.ExpiresAt
			c.ExpiresAt = &t
		}
		credInFile[c.ID] = true
		fileCreds = append(fileCreds, c)
	}
	if !prune {
		for _, c := range cur.Credentials {
			if !credInFile[c.ID] {
				next.Credentials = append(next.Credentials, c)
			}
		}
	}
	next.Credentials = append(next.Credentials, fileCreds...)
	// Tombstones are a union of the store's and the file's (an export lists
	// them), plus the keys of credentials this apply removes: a key once
	// revoked can never be applied back, and validation says so by name.
	next.Revoked = file.Clone().Revoked
	next.Carry(cur)
	// The principal deny list is kept, like other items, unless pruned.
	next.DeniedPrincipals = slices.Clone(file.DeniedPrincipals)
	if !prune {
		for _, p := range cur.DeniedPrincipals {
			if !slices.Contains(next.DeniedPrincipals, p) {
				next.DeniedPrincipals = append(next.DeniedPrincipals, p)
			}
		}
	}

	next.Normalize()
	// An entitlement the file changes gets a new updated_at; one it repeats
	// keeps the stored one.
	for i := range next.Entitlements {
		e := &next.Entitlements[i]
		if old := oldEnt[e.Name]; old != nil && inFile[e.Name] && entitlementChanged(old, e) {
			e.UpdatedAt = now
		}
	}
	if err := next.Validate(); err != nil {
		return nil, nil, errValidation("the resulting state is invalid", err)
	}
	changes := state.Diff(cur, next)
	if changes == nil {
		changes = []state.Change{}
	}
	return next, changes, nil
}

// keepSecret lets a file that leaves out a credential's secret (such as an
// export, which never carries secrets) keep the stored one, provided it names
// the same key.
func keepSecret(c, old *state.Credential) {
	switch {
	case c.Kind == state.KindSigV4 && old.Kind == state.KindSigV4 && c.Secret == "" && c.AccessKeyID == old.AccessKeyID:
		c.Secret = old.Secret
	case c.Kind == state.KindAPIKey && old.Kind == state.KindAPIKey && c.KeySHA256 == "":
		c.KeySHA256 = old.KeySHA256
	}
}

func entitlementChanged(old, new *state.Entitlement) bool {
	a := &state.State{Entitlements: []state.Entitlement{*old}}
	b := &state.State{Entitlements: []state.Entitlement{*new}}
	return len(state.Diff(a, b)) > 0
}

func orNow(t, now time.Time) time.Time {
	if t.IsZero() {
		return now
	}
	return t.UTC()
}

func isZeroOrg(o *state.Organization) bool {
	return o.ID == "" && o.Root == "" && o.HubAccount == "" && len(o.Units) == 0 && len(o.Accounts) == 0
}
