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
	// Actor, Action and Target, when set, keep only the entries whose field
	// contains them (ignoring case), all of them.
	Actor, Action, Target string
}

// filtered reports whether q selects by the entries' fields.
func (q AuditQuery) filtered() bool { return q.Actor != "" || q.Action != "" || q.Target != "" }

// Matches reports whether e passes q's field filters (not its paging).
func (q AuditQuery) Matches(e AuditEntry) bool {
	has := func(field, sub string) bool {
		return sub == "" || strings.Contains(strings.ToLower(field), strings.ToLower(sub))
	}
	return has(e.Actor, q.Actor) && has(e.Action, q.Action) && has(e.Target, q.Target)
}

// auditScanBatch is how many entries a filtered query reads per round trip.
const auditScanBatch = 500

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
	batch := int64(limit)
	if q.filtered() {
		// Filters skip entries: read on in batches until the page is full or
		// the log (trimmed to AuditMax entries) ends.
		batch = max(batch, auditScanBatch)
	}
	out := make([]AuditEntry, 0, limit)
	for {
		msgs, err := s.client.XRevRangeN(ctx, s.keys.audit, upper, "-", batch).Result()
		if err != nil {
			return nil, fmt.Errorf("reading audit log: %w", err)
		}
		for _, m := range msgs {
			e := decodeAudit(m)
			if !q.Since.IsZero() && e.Time.Before(q.Since) {
				return out, nil
			}
			if q.Matches(e) {
				out = append(out, e)
				if len(out) == limit {
					return out, nil
				}
			}
		}
		if int64(len(msgs)) < batch {
			return out, nil
		}
		upper = "(" + msgs[len(msgs)-1].ID
	}
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
