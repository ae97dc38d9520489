package admin

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/bedrock-gateway/gateway/internal/state"
)

// Verdicts and reasons of a share preview row. Reasons are short and fixed
// (a console shows and filters by them); Detail says more.
const (
	verdictAccepted = "accepted"
	verdictRefused  = "refused"

	reasonMalformed     = "malformed"
	reasonUnknownAcct   = "unknown account"
	reasonUnknownOU     = "unknown OU"
	reasonUnknownOrg    = "unknown organization"
	reasonOutsideScope  = "outside scope"
	reasonDuplicate     = "duplicate"
	reasonAlreadyShared = "already shared"
)

// Preview paging: the default and largest page.
const (
	defaultPreviewLimit = 200
	maxPreviewLimit     = 1000
)

// previewRow is one row's verdict.
type previewRow struct {
	Line          int    `json:"line,omitempty"`  // CSV body
	Index         *int   `json:"index,omitempty"` // JSON body
	Target        string `json:"target"`
	MonthlyTokens *int64 `json:"monthly_tokens,omitempty"` // what the share would carry (accepted rows)
	Verdict       string `json:"verdict"`
	Reason        string `json:"reason,omitempty"`
	Detail        string `json:"detail,omitempty"`
}

type previewBody struct {
	Entitlement string       `json:"entitlement"`
	Total       int          `json:"total"`
	Accepted    int          `json:"accepted"`
	Refused     int          `json:"refused"`
	Offset      int          `json:"offset"`
	Limit       int          `json:"limit"`
	Rows        []previewRow `json:"rows"`
}

// previewer judges rows against one entitlement and keeps one page of them.
type previewer struct {
	name     string
	ent      *state.Entitlement
	org      *orgIndex
	existing map[string]int64 // target -> the share's monthly_tokens
	outside  string
	body     previewBody
}

func newPreviewer(st *state.State, e *state.Entitlement, offset, limit int) *previewer {
	p := &previewer{
		name: e.Name, ent: e, org: newOrgIndex(st),
		existing: make(map[string]int64, len(e.Shares)),
		outside:  fmt.Sprintf("outside the scope of entitlement %s %v", e.Name, e.Scope),
		body:     previewBody{Entitlement: e.Name, Offset: offset, Limit: limit, Rows: []previewRow{}},
	}
	for _, sh := range e.Shares {
		p.existing[sh.Target] = sh.MonthlyTokens
	}
	return p
}

// add counts a row and keeps it when it falls on the page; build makes the
// row (its strings) only then.
func (p *previewer) add(accepted bool, build func() previewRow) {
	n := p.body.Total
	p.body.Total++
	if accepted {
		p.body.Accepted++
	} else {
		p.body.Refused++
	}
	if n >= p.body.Offset && n < p.body.Offset+p.body.Limit {
		p.body.Rows = append(p.body.Rows, build())
	}
}

// judge gives the verdict of a well-formed target not named before.
func (p *previewer) judge(target string, tokens int64) (reason, detail string) {
	switch {
	case !p.org.known(target):
		switch {
		case state.IsAccountID(target):
			return reasonUnknownAcct, "no such account in the organization"
		case state.IsOUID(target):
			return reasonUnknownOU, "no such OU in the organization"
		default:
			return reasonUnknownOrg, "not this organization or its root"
		}
	case !p.org.inside(p.ent.Scope, target):
		return reasonOutsideScope, p.outside
	}
	if cur, ok := p.existing[target]; ok {
		if cur == tokens {
			return reasonAlreadyShared, "already shared with these limits; nothing to change"
		}
		return "", fmt.Sprintf("already shared with monthly_tokens %d; applying sets it to %d", cur, tokens)
	}
	return "", ""
}

// row adds a well-formed row's verdict.
func (p *previewer) row(line int, index *int, target string, tokens int64) {
	reason, detail := p.judge(target, tokens)
	p.add(reason == "", func() previewRow {
		r := previewRow{Line: line, Index: index, Target: target, Verdict: verdictAccepted, Reason: reason, Detail: detail}
		if reason != "" {
			r.Verdict = verdictRefused
		} else {
			r.MonthlyTokens = &tokens
		}
		return r
	})
}

// previewShares answers POST /admin/v1/entitlements/{name}/shares/preview:
// the verdict on every row of a body POST .../shares accepts, paged by
// offset and limit, applying nothing. Rows are judged against the state as
// it is now, one by one, so that a console can show which to fix before
// anything is applied (POST .../shares refuses the whole list for one bad
// row).
func (s *server) previewShares(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	q := r.URL.Query()
	offset, err := queryInt(q.Get("offset"), 0, 0, 1<<31-1, "offset")
	if err != nil {
		return err
	}
	limit, err := queryInt(q.Get("limit"), defaultPreviewLimit, 1, maxPreviewLimit, "limit")
	if err != nil {
		return err
	}
	mt, err := mediaType(r)
	if err != nil {
		return err
	}
	st, _, err := s.load(r.Context())
	if err != nil {
		return err
	}
	i := findEntitlement(st, name)
	if i < 0 {
		return errNotFound("entitlement %q does not exist", name)
	}
	p := newPreviewer(st, &st.Entitlements[i], offset, limit)
	switch mt {
	case "text/csv", "text/plain":
		var def int64
		if v := q.Get("monthly_tokens"); v != "" {
			def, err = strconv.ParseInt(v, 10, 64)
			if err != nil || def < 0 {
				return errBadRequest("monthly_tokens %q is not a non-negative whole number", v)
			}
		}
		err := scanSharesCSV(http.MaxBytesReader(w, r.Body, maxLargeBody), def, func(row *csvRow, target string) {
			if row.fault == faultNone {
				p.row(row.line, nil, target, row.tokens)
				return
			}
			p.add(false, func() previewRow {
				t := row.target
				if len(t) == 0 {
					t = row.text
				}
				reason := reasonMalformed
				if row.fault == faultDuplicate {
					reason = reasonDuplicate
				}
				return previewRow{Line: row.line, Target: clip(string(t)), Verdict: verdictRefused, Reason: reason, Detail: row.problem()}
			})
		})
		if err != nil {
			var tooLarge *http.MaxBytesError
			if errors.As(err, &tooLarge) {
				return err
			}
			return errBadRequest("reading the request body: %v", err)
		}
	case "", "application/json":
		data, err := readBody(w, r, maxLargeBody)
		if err != nil {
			return err
		}
		var req sharesRequest
		if err := decodeJSON(data, &req); err != nil {
			return err
		}
		if len(req.Targets) == 0 {
			return errBadRequest(`"targets" must name at least one account, OU or organization ID`)
		}
		if req.MonthlyTokens < 0 {
			return errBadRequest("monthly_tokens must not be negative")
		}
		seen := make(map[string]int, len(req.Targets))
		for j, t := range req.Targets {
			idx := j
			prev, dup := seen[t]
			switch {
			case !isTargetID(t):
				p.add(false, func() previewRow {
					return previewRow{Index: &idx, Target: clip(t), Verdict: verdictRefused, Reason: reasonMalformed, Detail: notATarget}
				})
			case dup:
				p.add(false, func() previewRow {
					return previewRow{Index: &idx, Target: t, Verdict: verdictRefused, Reason: reasonDuplicate,
						Detail: fmt.Sprintf("duplicate: also targets[%d]", prev)}
				})
			default:
				seen[t] = j
				p.row(0, &idx, t, req.MonthlyTokens)
			}
		}
	default:
		return unsupported(mt, "application/json or text/csv")
	}
	writeJSON(w, http.StatusOK, p.body)
	return nil
}

// queryInt parses an optional whole-number query parameter within [lo, hi].
func queryInt(v string, def, lo, hi int, name string) (int, error) {
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, errBadRequest("%s %q must be a whole number from %d to %d", name, v, lo, hi)
	}
	return n, nil
}
