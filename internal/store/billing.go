package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bedrock-gateway/gateway/internal/state"
)

// ActionBillingProfiles is the audit action of ReplaceBillingProfiles.
const ActionBillingProfiles = "billing.profiles.replace"

// billingProfilesKey is <prefix>:{state}:billing_profiles, a hash of
// state.BillingProfile.Key -> JSON of state.BillingProfile. It sits beside the state, not
// in it: the records follow AWS (gateway billing sync), not state files, so
// apply and export leave them alone, and a store that lost them gets them
// back from the profiles' tags at the next sync.
func (s *Store) billingProfilesKey() string { return s.prefix + ":{state}:billing_profiles" }

// BillingProfiles returns the recorded profiles, sorted by entitlement and team.
func (s *Store) BillingProfiles(ctx context.Context) ([]state.BillingProfile, error) {
	m, err := s.client.HGetAll(ctx, s.billingProfilesKey()).Result()
	if err != nil {
		return nil, fmt.Errorf("reading billing profiles: %w", err)
	}
	return decodeBillingProfiles(m)
}

func decodeBillingProfiles(m map[string]string) ([]state.BillingProfile, error) {
	out := make([]state.BillingProfile, 0, len(m))
	for _, k := range sortedKeys(m) {
		var p state.BillingProfile
		if err := json.Unmarshal([]byte(m[k]), &p); err != nil {
			return nil, fmt.Errorf("decoding billing profile %q: %w", k, err)
		}
		out = append(out, p)
	}
	return out, nil
}

// ReplaceBillingProfiles makes the recorded profiles exactly ps, audited as
// actor with one entry per record added, changed or removed, and bumps the
// state version (every replica then reloads them) when anything changed. It
// returns the new version, or the current one when nothing changed.
func (s *Store) ReplaceBillingProfiles(ctx context.Context, actor string, ps []state.BillingProfile) (uint64, error) {
	want := make(map[string][]byte, len(ps))
	for _, p := range ps {
		if p.Entitlement == "" || strings.Contains(p.Entitlement, "/") || p.ARN == "" {
			return 0, fmt.Errorf("%w: a billing profile needs an entitlement name and an ARN", ErrInvalid)
		}
		if _, dup := want[p.Key()]; dup {
			return 0, fmt.Errorf("%w: billing profile of %s team %q given twice", ErrInvalid, p.Entitlement, p.Team)
		}
		b, err := json.Marshal(p)
		if err != nil {
			return 0, fmt.Errorf("encoding billing profile: %w", err)
		}
		want[p.Key()] = b
	}
	key := s.billingProfilesKey()
	for attempt := 0; attempt < maxAttempts; attempt++ {
		if attempt > 0 {
			if err := backoff(ctx, attempt); err != nil {
				return 0, err
			}
		}
		var version uint64
		err := s.client.Watch(ctx, func(tx *redis.Tx) error {
			base, err := parseVersion(tx.Get(ctx, s.keys.version))
			if err != nil {
				return err
			}
			cur, err := tx.HGetAll(ctx, key).Result()
			if err != nil {
				return err
			}
			version = base
			var set []any
			var del []string
			var audits [][]any
			now := s.now().UTC().Format(time.RFC3339Nano)
			entry := func(target string, before, after []byte) []any {
				v := []any{fieldTime, now, fieldActor, actor, fieldAction, ActionBillingProfiles,
					fieldTarget, "billing_profile:" + target, fieldVersion, formatVersion(base + 1)}
				if before != nil {
					v = append(v, fieldBefore, before)
				}
				if after != nil {
					v = append(v, fieldAfter, after)
				}
				return v
			}
			for _, k := range sortedKeys(want) {
				if old, ok := cur[k]; !ok || old != string(want[k]) {
					set = append(set, k, want[k])
					var before []byte
					if ok {
						before = []byte(old)
					}
					audits = append(audits, entry(k, before, want[k]))
				}
			}
			for _, k := range sortedKeys(cur) {
				if _, ok := want[k]; !ok {
					del = append(del, k)
					audits = append(audits, entry(k, []byte(cur[k]), nil))
				}
			}
			if len(audits) == 0 {
				return nil
			}
			_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
				if len(set) > 0 {
					p.HSet(ctx, key, set...)
				}
				if len(del) > 0 {
					p.HDel(ctx, key, del...)
				}
				p.Incr(ctx, s.keys.version)
				for _, a := range audits {
					p.XAdd(ctx, &redis.XAddArgs{Stream: s.keys.audit, MaxLen: s.max, Approx: true, Values: a})
				}
				p.Publish(ctx, s.channel, formatVersion(base+1))
				return nil
			})
			if err == nil {
				version = base + 1
			}
			return err
		}, s.keys.version, key)
		switch {
		case err == nil:
			return version, nil
		case errors.Is(err, redis.TxFailedErr):
			continue
		default:
			return 0, fmt.Errorf("writing billing profiles: %w", err)
		}
	}
	return 0, ErrConflict
}
