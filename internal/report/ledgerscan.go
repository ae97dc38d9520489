package report

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
)

// LedgerScanner finds the entitlements that have a usage ledger for a month
// by scanning Redis for the quota package's ledger keys
// (<prefix>:{ent:<name>}:ledger:<month>), so a report still includes the
// usage of entitlements deleted since. Use its Entitlements method as
// ReportOptions.ExtraEntitlements. SCAN walks the whole keyspace (every
// master of a cluster), which is fine for a monthly report and not for a
// hot path.
type LedgerScanner struct {
	Client redis.UniversalClient
	// Prefix is the quota key prefix (quota.Options.Prefix); empty means "gw".
	Prefix string
}

// Entitlements lists the entitlements with a ledger for month, sorted.
func (s *LedgerScanner) Entitlements(ctx context.Context, month string) ([]string, error) {
	prefix := s.Prefix
	if prefix == "" {
		prefix = "gw"
	}
	head, tail := prefix+":{ent:", "}:ledger:"+month
	pattern := globEscape(head) + "*" + globEscape(tail)
	var (
		mu    sync.Mutex
		names []string
	)
	scan := func(ctx context.Context, c redis.Cmdable) error {
		it := c.Scan(ctx, 0, pattern, 1000).Iterator()
		for it.Next(ctx) {
			k := it.Val()
			if !strings.HasPrefix(k, head) || !strings.HasSuffix(k, tail) {
				continue
			}
			name := k[len(head) : len(k)-len(tail)]
			mu.Lock()
			names = append(names, name)
			mu.Unlock()
		}
		return it.Err()
	}
	var err error
	if cc, ok := s.Client.(*redis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return scan(ctx, c) })
	} else {
		err = scan(ctx, s.Client)
	}
	if err != nil {
		return nil, fmt.Errorf("scanning ledger keys: %w", err)
	}
	slices.Sort(names)
	return slices.Compact(names), nil
}

// globEscape escapes the characters special to Redis glob patterns.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '*', '?', '[', ']', '\\':
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
