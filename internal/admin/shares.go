package admin

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"

	"github.com/bedrock-gateway/gateway/internal/state"
)

type sharesRequest struct {
	Targets       []string `json:"targets"`
	MonthlyTokens int64    `json:"monthly_tokens"`
}

type sharesBody struct {
	Entitlement  string        `json:"entitlement"`
	Shares       []state.Share `json:"shares"`
	StateVersion uint64        `json:"state_version"`
}

// changeBody answers a change that has nothing else to say (a removal):
// the state version that holds it.
type changeBody struct {
	StateVersion uint64 `json:"state_version"`
}

// readShareRows reads the targets of POST .../shares from a JSON or CSV body.
func readShareRows(w http.ResponseWriter, r *http.Request) ([]shareRow, error) {
	mt, err := mediaType(r)
	if err != nil {
		return nil, err
	}
	switch mt {
	case "text/csv", "text/plain":
		var def int64
		if q := r.URL.Query().Get("monthly_tokens"); q != "" {
			def, err = strconv.ParseInt(q, 10, 64)
			if err != nil || def < 0 {
				return nil, errBadRequest("monthly_tokens %q is not a non-negative whole number", q)
			}
		}
		// Parsed as it arrives: a large upload is never held whole, and bad
		// rows cost a bounded list of problems.
		rows, problems, err := parseSharesCSV(http.MaxBytesReader(w, r.Body, maxLargeBody), def)
		if err != nil {
			var tooLarge *http.MaxBytesError
			if errors.As(err, &tooLarge) {
				return nil, err
			}
			return nil, errBadRequest("reading the request body: %v", err)
		}
		if problems.total > 0 {
			return nil, errRows(problems)
		}
		if len(rows) == 0 {
			return nil, errBadRequest("the CSV body names no targets")
		}
		return rows, nil
	case "", "application/json":
		data, err := readBody(w, r, maxLargeBody)
		if err != nil {
			return nil, err
		}
		var req sharesRequest
		if err := decodeJSON(data, &req); err != nil {
			return nil, err
		}
		if len(req.Targets) == 0 {
			return nil, errBadRequest(`"targets" must name at least one account, OU or organization ID`)
		}
		if req.MonthlyTokens < 0 {
			return nil, errBadRequest("monthly_tokens must not be negative")
		}
		var problems problemList
		seen := make(map[string]int, len(req.Targets))
		rows := make([]shareRow, 0, len(req.Targets))
		for i, t := range req.Targets {
			idx := i
			switch prev, dup := seen[t]; {
			case !isTargetID(t):
				problems.add(problem{Index: &idx, Value: clip(t), Problem: notATarget})
			case dup:
				problems.add(problem{Index: &idx, Value: t, Problem: fmt.Sprintf("duplicate: also targets[%d]", prev)})
			default:
				seen[t] = i
				rows = append(rows, shareRow{Index: &idx, Target: t, MonthlyTokens: req.MonthlyTokens})
			}
		}
		if problems.total > 0 {
			return nil, errRows(problems)
		}
		return rows, nil
	default:
		return nil, unsupported(mt, "application/json or text/csv")
	}
}

// errRows answers the problems of a share request: every one is counted, the
// first maxProblems are listed.
func errRows(problems problemList) *apiError {
	where := func(p problem) string {
		if p.Line > 0 {
			return fmt.Sprintf("line %d", p.Line)
		}
		if p.Index != nil {
			return fmt.Sprintf("targets[%d]", *p.Index)
		}
		return "a target"
	}
	first := problems.items[0]
	msg := fmt.Sprintf("%s: %s; nothing was applied", where(first), first.Problem)
	switch {
	case problems.total > len(problems.items):
		msg = fmt.Sprintf("%d targets are invalid (the first, %s: %s); the first %d are listed; nothing was applied",
			problems.total, where(first), first.Problem, len(problems.items))
	case problems.total > 1:
		msg = fmt.Sprintf("%d targets are invalid (the first, %s: %s); nothing was applied", problems.total, where(first), first.Problem)
	}
	return &apiError{Status: http.StatusBadRequest, Code: codeValidationFailed, Message: msg, Details: problems.items}
}

func (s *server) addShares(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	rows, err := readShareRows(w, r)
	if err != nil {
		return err
	}
	now := s.stamp()
	var shares []state.Share
	v, _, err := s.update(r, "share.add", func(st *state.State) error {
		i := findEntitlement(st, name)
		if i < 0 {
			return errNotFound("entitlement %q does not exist", name)
		}
		e := &st.Entitlements[i]
		org := newOrgIndex(st)
		var problems problemList
		outside := fmt.Sprintf("outside the scope of entitlement %s %v", name, e.Scope)
		for _, row := range rows {
			p := problem{Line: row.Line, Index: row.Index, Value: row.Target}
			switch {
			case !org.known(row.Target):
				p.Problem = "unknown ID: not the organization, its root, or one of its OUs or accounts"
			case !org.inside(e.Scope, row.Target):
				p.Problem = outside
			default:
				continue
			}
			problems.add(p)
		}
		if problems.total > 0 {
			return errRows(problems)
		}
		at := make(map[string]int, len(e.Shares))
		for j, sh := range e.Shares {
			at[sh.Target] = j
		}
		changed := false
		for _, row := range rows {
			if j, ok := at[row.Target]; ok {
				if e.Shares[j].MonthlyTokens != row.MonthlyTokens {
					e.Shares[j].MonthlyTokens = row.MonthlyTokens
					changed = true
				}
				continue
			}
			at[row.Target] = len(e.Shares)
			e.Shares = append(e.Shares, state.Share{Target: row.Target, MonthlyTokens: row.MonthlyTokens})
			changed = true
		}
		shares = slices.Clone(e.Shares)
		if !changed {
			return errUnchanged
		}
		e.UpdatedAt = now
		if err := validate(st, "sharing entitlement "+name); err != nil {
			return err
		}
		shares = slices.Clone(st.Entitlements[findEntitlement(st, name)].Shares)
		return nil
	})
	if err != nil {
		return err
	}
	if shares == nil {
		shares = []state.Share{}
	}
	writeJSON(w, http.StatusOK, sharesBody{Entitlement: name, Shares: shares, StateVersion: v})
	return nil
}

func (s *server) removeShare(w http.ResponseWriter, r *http.Request) error {
	name, target := r.PathValue("name"), r.PathValue("target")
	now := s.stamp()
	v, _, err := s.update(r, "share.remove", func(st *state.State) error {
		i := findEntitlement(st, name)
		if i < 0 {
			return errNotFound("entitlement %q does not exist", name)
		}
		e := &st.Entitlements[i]
		j := slices.IndexFunc(e.Shares, func(sh state.Share) bool { return sh.Target == target })
		if j < 0 {
			return errNotFound("entitlement %s is not shared with %s", name, target)
		}
		e.Shares = slices.Delete(e.Shares, j, j+1)
		e.UpdatedAt = now
		return validate(st, "unsharing entitlement "+name)
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, changeBody{StateVersion: v})
	return nil
}

// orgIndex answers "does this ID exist" and "is it inside this scope" for
// share requests, so each bad row can be reported by itself (state.Validate
// remains the final word on the whole state).
type orgIndex struct {
	org, root string
	units     map[string]string // OU → parent
	accounts  map[string]string // account → unit
}

func newOrgIndex(st *state.State) *orgIndex {
	o := &st.Organization
	x := &orgIndex{
		org:      o.ID,
		root:     o.Root,
		units:    make(map[string]string, len(o.Units)),
		accounts: make(map[string]string, len(o.Accounts)),
	}
	for _, u := range o.Units {
		x.units[u.ID] = u.Parent
		if x.root == "" && state.IsRootID(u.Parent) {
			x.root = u.Parent
		}
	}
	for _, a := range o.Accounts {
		x.accounts[a.ID] = a.Unit
		if x.root == "" && state.IsRootID(a.Unit) {
			x.root = a.Unit
		}
	}
	return x
}

func (x *orgIndex) isWhole(id string) bool {
	return id != "" && (id == x.org || id == x.root)
}

func (x *orgIndex) known(id string) bool {
	if x.isWhole(id) {
		return true
	}
	if _, ok := x.units[id]; ok {
		return true
	}
	_, ok := x.accounts[id]
	return ok
}

// inside reports whether target lies inside scope: an empty scope, or one
// naming the organization or root, is the whole organization; otherwise the
// target or an OU above it must be in the scope.
func (x *orgIndex) inside(scope []string, target string) bool {
	if len(scope) == 0 || slices.ContainsFunc(scope, x.isWhole) {
		return true
	}
	if slices.Contains(scope, target) {
		return true
	}
	unit, ok := x.accounts[target]
	if !ok {
		unit = target
	}
	for range len(x.units) + 1 { // bounded: a cyclic tree is Validate's to report
		parent, ok := x.units[unit]
		if !ok {
			return false
		}
		if slices.Contains(scope, unit) {
			return true
		}
		unit = parent
	}
	return false
}
