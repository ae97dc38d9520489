package store

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// TimeZoneMismatchError refuses a replica whose --time-zone differs from the
// one recorded in the store: replicas of one store must agree on when a
// month ends, or they would count the same calls in different months (and
// reset the caps at different times).
type TimeZoneMismatchError struct {
	Stored, Configured string
}

func (e *TimeZoneMismatchError) Error() string {
	return fmt.Sprintf("--time-zone %s differs from %s, the zone recorded in the state store by the replicas before it: "+
		"every replica of one store must count months in the same zone; use --time-zone %s, "+
		"or change the zone of every replica and start the first with --time-zone-change",
		e.Configured, e.Stored, e.Stored)
}

// claimTimeZoneScript records ARGV[1] when no zone is recorded, or always
// when ARGV[2] is '1'; it returns the zone recorded before (empty for none).
var claimTimeZoneScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if not cur or ARGV[2] == '1' then
  redis.call('SET', KEYS[1], ARGV[1])
end
return cur or ''
`)

// CheckTimeZone records zone as the store's time zone when none is recorded
// (the first replica to start), or, with change, replaces the recorded one.
// Otherwise a zone different from the recorded one is a
// *TimeZoneMismatchError. It returns the zone recorded before ("" for none).
func (s *Store) CheckTimeZone(ctx context.Context, zone string, change bool) (previous string, err error) {
	flag := "0"
	if change {
		flag = "1"
	}
	previous, err = claimTimeZoneScript.Run(ctx, s.client, []string{s.keys.timeZone}, zone, flag).Text()
	if err != nil {
		return "", fmt.Errorf("checking the store's time zone: %w", err)
	}
	if !change && previous != "" && previous != zone {
		return previous, &TimeZoneMismatchError{Stored: previous, Configured: zone}
	}
	return previous, nil
}
