package admin

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/bedrock-gateway/gateway/internal/store"
)

func (s *server) listAudit(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	var aq store.AuditQuery
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > store.MaxAuditLimit {
			return errBadRequest("limit %q must be a whole number from 1 to %d", v, store.MaxAuditLimit)
		}
		aq.Limit = n
	}
	aq.Before = q.Get("before")
	// Substring filters (ignoring case), as a console's search box sends them.
	aq.Actor, aq.Action, aq.Target = q.Get("actor"), q.Get("action"), q.Get("target")
	for name, v := range map[string]string{"actor": aq.Actor, "action": aq.Action, "target": aq.Target} {
		if len(v) > 256 {
			return errBadRequest("%s must be at most 256 characters", name)
		}
	}
	if v := q.Get("since"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return errBadRequest("since %q must be an RFC 3339 time such as 2025-01-31T00:00:00Z", v)
		}
		aq.Since = t
	}
	entries, err := s.store.Audit(r.Context(), aq)
	if errors.Is(err, store.ErrInvalidCursor) {
		return errBadRequest("before %q is not an audit entry ID", aq.Before)
	}
	if err != nil {
		return err
	}
	if entries == nil {
		entries = []store.AuditEntry{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"entries": entries})
	return nil
}
