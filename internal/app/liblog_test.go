package app

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"testing"
)

// go-redis's messages come out as records of the gateway's handler (JSON
// here), not as plain text lines in the middle of a JSON log.
func TestRedisLoggerWritesJSON(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	l := redisLogger{log: slog.New(slog.NewJSONHandler(&buf, nil))}
	l.Printf(context.Background(), "redis: connection pool: failed to dial after %d attempts: %s", 5, "connection refused")
	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatalf("not one JSON record: %q: %v", buf.String(), err)
	}
	if rec["level"] != "WARN" || rec["component"] != "go-redis" ||
		rec["msg"] != "connection pool: failed to dial after 5 attempts: connection refused" {
		t.Fatalf("record %v", rec)
	}
}
