package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// AuditEntry records one change to the state: who, when, what, before and after.
type AuditEntry struct {
	ID     string          `json:"id"`
	Time   time.Time       `json:"time"`
	Actor  string          `json:"actor"`  // e.g. "admin:ops-team" (a token's name, never the token)
	Action string          `json:"action"` // e.g. "entitlement.create", "share.add", "apply"
	Target string          `json:"target"` // e.g. entitlement name, credential ID
	Before json.RawMessage `json:"before,omitempty"`
	After  json.RawMessage `json:"after,omitempty"`
}

// AuditQuery selects audit entries, newest first.
type AuditQuery struct {
	Limit  int       // default 100, max 1000
	Before string    // an entry ID: return entries older than it (paging)
	Since  time.Time // zero: no lower bound
}

// Audit query limits.
const (
	DefaultAuditLimit = 100
	MaxAuditLimit     = 1000
)

// Stream fields of an audit entry.
const (
	fieldTime    = "time"
	fieldActor   = "actor"
	fieldAction  = "action"
	fieldTarget  = "target"
	fieldBefore  = "before"
	fieldAfter   = "after"
	fieldVersion = "version"
)

// Audit returns audit entries, newest first. Entries are appended in order and
// their times are taken to be non-decreasing, so Since stops at the first entry
// older than it. An invalid Before cursor is an ErrInvalidCursor.
func (s *Store) Audit(ctx context.Context, q AuditQuery) ([]AuditEntry, error) {
	limit := q.Limit
	switch {
	case limit <= 0:
		limit = DefaultAuditLimit
	case limit > MaxAuditLimit:
		limit = MaxAuditLimit
	}
	upper := "+"
	if q.Before != "" {
		if !isStreamID(q.Before) {
			return nil, fmt.Errorf("%w: %q", ErrInvalidCursor, q.Before)
		}
		upper = "(" + q.Before
	}
	msgs, err := s.client.XRevRangeN(ctx, s.keys.audit, upper, "-", int64(limit)).Result()
	if err != nil {
		return nil, fmt.Errorf("reading audit log: %w", err)
	}
	out := make([]AuditEntry, 0, len(msgs))
	for _, m := range msgs {
		e := decodeAudit(m)
		if !q.Since.IsZero() && e.Time.Before(q.Since) {
			break
		}
		out = append(out, e)
	}
	return out, nil
}

// ErrInvalidCursor means AuditQuery.Before is not an audit entry ID.
var ErrInvalidCursor = errors.New("store: invalid audit cursor")

func decodeAudit(m redis.XMessage) AuditEntry {
	str := func(k string) string {
		v, _ := m.Values[k].(string)
		return v
	}
	raw := func(k string) json.RawMessage {
		if v := str(k); v != "" {
			return json.RawMessage(v)
		}
		return nil
	}
	t, _ := time.Parse(time.RFC3339Nano, str(fieldTime))
	return AuditEntry{
		ID:     m.ID,
		Time:   t,
		Actor:  str(fieldActor),
		Action: str(fieldAction),
		Target: str(fieldTarget),
		Before: raw(fieldBefore),
		After:  raw(fieldAfter),
	}
}

// isStreamID reports whether id has the form ms or ms-seq (decimal digits).
func isStreamID(id string) bool {
	ms, seq, hasSeq := strings.Cut(id, "-")
	return isDigits(ms) && (!hasSeq || isDigits(seq))
}

func isDigits(s string) bool {
	if s == "" || s[0] == '+' {
		return false
	}
	_, err := strconv.ParseUint(s, 10, 64)
	return err == nil
}
