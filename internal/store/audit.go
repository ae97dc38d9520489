package store

import (
	"encoding/json"
	"time"
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
