package admin

import (
	"bytes"
	"errors"
	"net/http"
	"time"

	"github.com/bedrock-gateway/gateway/internal/report"
)

func errNotImplemented(what string) *apiError {
	return &apiError{Status: http.StatusNotImplemented, Code: codeNotImplemented,
		Message: what + " is not available on this gateway yet"}
}

// sourceError maps a UsageSource or QuotaSource error.
func sourceError(err error) error {
	if errors.Is(err, report.ErrInvalidQuery) {
		return errBadRequest("%v", err)
	}
	return err
}

func (s *server) getUsage(w http.ResponseWriter, r *http.Request) error {
	if s.usage == nil {
		return errNotImplemented("the usage report")
	}
	q := r.URL.Query()
	uq := report.UsageQuery{Month: q.Get("month"), From: q.Get("from"), To: q.Get("to"), GroupBy: q.Get("group_by")}
	format := q.Get("format")
	// No month: the usage source picks the current month in the gateway's
	// --time-zone (the months quota counts in), not UTC.
	for name, v := range map[string]string{"month": uq.Month, "from": uq.From, "to": uq.To} {
		if _, err := time.Parse("2006-01", v); v != "" && (err != nil || len(v) != 7) {
			return errBadRequest("%s %q must be YYYY-MM", name, v)
		}
	}
	switch uq.GroupBy {
	case "", "team", "account", "entitlement", "model", "tier", "principal":
	default:
		return errBadRequest("group_by %q must be team, account, entitlement, model, tier or principal", uq.GroupBy)
	}
	switch format {
	case "", "json", "csv":
	default:
		return errBadRequest("format %q must be json or csv", format)
	}
	rep, err := s.usage.Usage(r.Context(), uq)
	if err != nil {
		return sourceError(err)
	}
	if format == "csv" {
		// Rendered whole before the status line, so a failure is still a 500.
		var csv bytes.Buffer
		if err := report.WriteCSV(&csv, rep); err != nil {
			return err
		}
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		name := rep.Month
		if name == "" {
			name = rep.From + "_" + rep.To
		}
		w.Header().Set("Content-Disposition", `attachment; filename="usage-`+name+`.csv"`)
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(csv.Bytes())
		return nil
	}
	writeJSON(w, http.StatusOK, rep)
	return nil
}

func (s *server) getQuota(w http.ResponseWriter, r *http.Request) error {
	if s.quota == nil {
		return errNotImplemented("the quota report")
	}
	name := r.PathValue("name")
	st, _, err := s.load(r.Context())
	if err != nil {
		return err
	}
	if findEntitlement(st, name) < 0 {
		return errNotFound("entitlement %q does not exist", name)
	}
	rem, err := s.quota.Quota(r.Context(), name)
	if err != nil {
		return sourceError(err)
	}
	writeJSON(w, http.StatusOK, rem)
	return nil
}
