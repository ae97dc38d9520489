package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bedrock-gateway/gateway/internal/state"
)

// maxAttempts bounds how often Update retries after losing a race; admin writes
// are rare, so losing this often means something is badly wrong.
const maxAttempts = 16

// errStale means the version moved between reading the state and WATCHing it.
var errStale = errors.New("state version moved")

// Update applies fn to a fresh copy of the current state and stores the result
// under optimistic concurrency: when another writer changed the state first, it
// reads again and calls fn again (so fn must not have side effects beyond st).
// Validation is fn's job: an error from fn aborts the update and is returned
// unchanged.
//
// Only the items that changed are written (compared by their JSON), together
// with one audit entry per changed item, the version increment and the change
// notification, in one MULTI/EXEC. It returns the new version, or the current
// one when nothing changed (then nothing is written, audited or published).
//
// Revocations are kept whatever fn does (state.State.Carry): the key of every
// credential fn removes is tombstoned in the same transaction, and no
// tombstone is ever dropped. The first write also stores the Marker.
func (s *Store) Update(ctx context.Context, actor, action string, fn func(st *state.State) error) (uint64, error) {
	v, _, err := s.update(ctx, actor, action, false, fn)
	return v, err
}

// update is Update; with seed it writes only to a store that was never
// initialized (no marker, empty state), and reports whether it did.
func (s *Store) update(ctx context.Context, actor, action string, seed bool, fn func(st *state.State) error) (uint64, bool, error) {
	for attempt := 0; attempt < maxAttempts; attempt++ {
		if attempt > 0 {
			if err := backoff(ctx, attempt); err != nil {
				return 0, false, err
			}
		}
		r, err := s.loadRaw(ctx)
		if err != nil {
			return 0, false, fmt.Errorf("loading state for update: %w", err)
		}
		st, err := s.decode(r)
		if err != nil {
			return 0, false, fmt.Errorf("loading state version %d for update: %w", r.version, err)
		}
		m, err := decodeMarker(r.marker)
		if err != nil {
			return r.version, false, err
		}
		if seed && (m != nil || !isEmptyState(st)) {
			return r.version, false, nil
		}
		// A wiped store takes nothing but a whole state (gateway apply), which
		// recovers it: the marker loses its flag and gains an epoch.
		var recovered *Marker
		if m != nil && m.Wiped {
			if action != "apply" {
				return r.version, false, ErrWiped
			}
			recovered = &Marker{ID: m.ID, InitializedAt: m.InitializedAt, Epoch: m.Epoch + 1}
		}
		// The "before" side is encoded from the decoded state, not taken from
		// Redis as stored, so a change in how items encode never looks like a
		// change of every item.
		before, err := encodeState(st)
		if err != nil {
			return 0, false, err
		}
		// What Carry needs of the state fn starts from; fn may change st's
		// items in place, but not these copies of the lists.
		prev := &state.State{Credentials: slices.Clone(st.Credentials), Revoked: state.Revoked{
			AccessKeyIDs: slices.Clone(st.Revoked.AccessKeyIDs), APIKeySHA256: slices.Clone(st.Revoked.APIKeySHA256)}}
		if err := fn(st); err != nil {
			return r.version, false, err
		}
		st.Carry(prev)
		after, err := encodeState(st)
		if err != nil {
			return r.version, false, err
		}
		changes := diff(before, after)
		if len(changes) == 0 && recovered == nil {
			return r.version, false, nil
		}
		v, err := s.commit(ctx, r.version, changes, actor, action, seed, recovered)
		switch {
		case err == nil:
			return v, true, nil
		case errors.Is(err, errInitialized):
			return r.version, false, nil
		case errors.Is(err, redis.TxFailedErr), errors.Is(err, errStale):
			continue
		default:
			return r.version, false, fmt.Errorf("writing state: %w", err)
		}
	}
	return 0, false, ErrConflict
}

// Replace makes the stored state equal to st (apply, bootstrap), through Update.
// The caller normalizes and validates st first; st is not modified.
func (s *Store) Replace(ctx context.Context, actor string, st *state.State) (uint64, error) {
	if st == nil {
		return 0, fmt.Errorf("%w: nil state", ErrInvalid)
	}
	return s.Update(ctx, actor, "apply", func(cur *state.State) error {
		// A shallow copy suffices: Update only encodes cur after fn returns.
		*cur = *st
		return nil
	})
}

func backoff(ctx context.Context, attempt int) error {
	d := time.Duration(rand.Int64N(int64(attempt)*int64(5*time.Millisecond)) + int64(time.Millisecond))
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// commit writes changes if the version is still base (and, with seed, the
// store has no marker yet).
func (s *Store) commit(ctx context.Context, base uint64, changes []change, actor, action string, seed bool, recovered *Marker) (uint64, error) {
	// One reading of the clock stamps the audit entries and a new marker.
	now := s.now().UTC()
	marker, err := newMarker(now)
	if err != nil {
		return 0, err
	}
	var incr *redis.IntCmd
	err = s.client.Watch(ctx, func(tx *redis.Tx) error {
		cur, err := parseVersion(tx.Get(ctx, s.keys.version))
		if err != nil {
			return err
		}
		if cur != base {
			return errStale
		}
		if seed {
			switch n, err := tx.Exists(ctx, s.keys.marker).Result(); {
			case err != nil:
				return err
			case n > 0:
				return errInitialized
			}
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			incr = s.queueWrites(ctx, p, base, changes, actor, action, now)
			if recovered != nil {
				b, err := json.Marshal(recovered)
				if err != nil {
					return fmt.Errorf("encoding store marker: %w", err)
				}
				p.Set(ctx, s.keys.marker, b, 0)
				return nil
			}
			// The store's identity, kept from the first write on.
			p.SetNX(ctx, s.keys.marker, marker, 0)
			return nil
		})
		return err
	}, s.keys.version, s.keys.marker)
	if err != nil {
		return 0, err
	}
	return uint64(incr.Val()), nil
}

// queueWrites queues the item writes, the version increment, the audit entries
// and the notification.
func (s *Store) queueWrites(ctx context.Context, p redis.Pipeliner, base uint64, changes []change, actor, action string, at time.Time) *redis.IntCmd {
	var entSet, credSet, revoked, denyAdd, denyDel []any
	var entDel, credDel []string
	for _, c := range changes {
		switch c.kind {
		case kindRevoked:
			// diff yields only additions: tombstones are never removed.
			revoked = append(revoked, c.key)
		case kindOrg:
			if c.after == nil {
				p.Del(ctx, s.keys.org)
			} else {
				p.Set(ctx, s.keys.org, c.after, 0)
			}
		case kindEntitlement:
			if c.after == nil {
				entDel = append(entDel, c.key)
			} else {
				entSet = append(entSet, c.key, c.after)
			}
		case kindCredential:
			if c.after == nil {
				credDel = append(credDel, c.key)
			} else {
				credSet = append(credSet, c.key, c.after)
			}
		case kindDeniedPrincipal:
			if c.after == nil {
				denyDel = append(denyDel, c.key)
			} else {
				denyAdd = append(denyAdd, c.key)
			}
		}
	}
	if len(entSet) > 0 {
		p.HSet(ctx, s.keys.entitlements, entSet...)
	}
	if len(entDel) > 0 {
		p.HDel(ctx, s.keys.entitlements, entDel...)
	}
	if len(credSet) > 0 {
		p.HSet(ctx, s.keys.credentials, credSet...)
	}
	if len(credDel) > 0 {
		p.HDel(ctx, s.keys.credentials, credDel...)
	}
	if len(revoked) > 0 {
		p.SAdd(ctx, s.keys.revoked, revoked...)
	}
	if len(denyAdd) > 0 {
		p.SAdd(ctx, s.keys.deniedPrincipals, denyAdd...)
	}
	if len(denyDel) > 0 {
		p.SRem(ctx, s.keys.deniedPrincipals, denyDel...)
	}
	incr := p.Incr(ctx, s.keys.version)
	now := at.Format(time.RFC3339Nano)
	for _, c := range changes {
		values := []any{
			fieldTime, now,
			fieldActor, actor,
			fieldAction, action,
			fieldTarget, c.target(),
			fieldVersion, formatVersion(base + 1),
		}
		if c.auditBefore != nil {
			values = append(values, fieldBefore, c.auditBefore)
		}
		if c.auditAfter != nil {
			values = append(values, fieldAfter, c.auditAfter)
		}
		p.XAdd(ctx, &redis.XAddArgs{Stream: s.keys.audit, MaxLen: s.max, Approx: true, Values: values})
	}
	// WATCH guarantees the increment yields base+1.
	p.Publish(ctx, s.channel, formatVersion(base+1))
	return incr
}

type itemKind int

const (
	kindOrg itemKind = iota
	kindEntitlement
	kindCredential
	kindRevoked
	kindDeniedPrincipal
)

// item is one stored item in two encodings: as stored, and for the audit log
// (without secrets).
type item struct {
	stored, audit []byte
}

// encoded is a state as the items the store writes.
type encoded struct {
	org          *item // nil: no organization
	entitlements map[string]item
	credentials  map[string]item
	revoked      map[string]item // by set member
	denied       map[string]item // by pattern
}

// change is one item whose stored form differs; a nil side means absent.
type change struct {
	kind                    itemKind
	key                     string
	after                   []byte
	auditBefore, auditAfter []byte
}

func (c change) target() string {
	switch c.kind {
	case kindEntitlement:
		return "entitlement/" + c.key
	case kindCredential:
		return "credential/" + c.key
	case kindRevoked:
		return "revoked/" + c.key
	case kindDeniedPrincipal:
		return "denied_principal/" + c.key
	default:
		return "organization"
	}
}

func encodeState(st *state.State) (*encoded, error) {
	e := &encoded{
		entitlements: make(map[string]item, len(st.Entitlements)),
		credentials:  make(map[string]item, len(st.Credentials)),
	}
	if !isZeroOrg(&st.Organization) {
		org := st.Organization
		org.Units = nonNil(org.Units)
		org.Accounts = nonNil(org.Accounts)
		b, err := json.Marshal(org)
		if err != nil {
			return nil, fmt.Errorf("encoding organization: %w", err)
		}
		e.org = &item{stored: b, audit: b}
	}
	for _, ent := range st.Entitlements {
		if ent.Name == "" {
			return nil, fmt.Errorf("%w: an entitlement has no name", ErrInvalid)
		}
		if _, dup := e.entitlements[ent.Name]; dup {
			return nil, fmt.Errorf("%w: entitlement %q appears twice", ErrInvalid, ent.Name)
		}
		ent.Scope = nonNil(ent.Scope)
		ent.Shares = nonNil(ent.Shares)
		b, err := json.Marshal(ent)
		if err != nil {
			return nil, fmt.Errorf("encoding entitlement %q: %w", ent.Name, err)
		}
		e.entitlements[ent.Name] = item{stored: b, audit: b}
	}
	for _, cred := range st.Credentials {
		if cred.ID == "" {
			return nil, fmt.Errorf("%w: a credential of account %s has no ID", ErrInvalid, cred.Account)
		}
		if _, dup := e.credentials[cred.ID]; dup {
			return nil, fmt.Errorf("%w: credential %q appears twice", ErrInvalid, cred.ID)
		}
		// Only the key's SHA-256 may be kept (Credential.Resolve makes it).
		if cred.Key != "" {
			return nil, fmt.Errorf("%w: credential %q carries a plaintext API key", ErrInvalid, cred.ID)
		}
		b, err := json.Marshal(cred)
		if err != nil {
			return nil, fmt.Errorf("encoding credential %q: %w", cred.ID, err)
		}
		pub := cred
		pub.Secret = ""
		a, err := json.Marshal(pub)
		if err != nil {
			return nil, fmt.Errorf("encoding credential %q: %w", cred.ID, err)
		}
		e.credentials[cred.ID] = item{stored: b, audit: a}
	}
	revoked, err := encodeRevoked(&st.Revoked)
	if err != nil {
		return nil, err
	}
	e.revoked = revoked
	e.denied = make(map[string]item, len(st.DeniedPrincipals))
	for _, p := range st.DeniedPrincipals {
		if p == "" {
			return nil, fmt.Errorf("%w: an empty denied principal", ErrInvalid)
		}
		a, err := json.Marshal(map[string]string{"principal": p})
		if err != nil {
			return nil, fmt.Errorf("encoding denied principal: %w", err)
		}
		e.denied[p] = item{stored: []byte(p), audit: a}
	}
	return e, nil
}

func isZeroOrg(o *state.Organization) bool {
	return o.ID == "" && o.Root == "" && o.HubAccount == "" && len(o.Units) == 0 && len(o.Accounts) == 0
}

// nonNil makes empty lists encode as [] whether they are nil or not, so the
// two never differ.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// diff lists the items that differ: the organization first, then entitlements
// and credentials in key order.
func diff(before, after *encoded) []change {
	var out []change
	if b, a := before.org, after.org; (b == nil) != (a == nil) || (b != nil && !bytes.Equal(b.stored, a.stored)) {
		out = append(out, newChange(kindOrg, "", b, a))
	}
	out = diffItems(out, kindEntitlement, before.entitlements, after.entitlements)
	out = diffItems(out, kindCredential, before.credentials, after.credentials)
	out = diffItems(out, kindDeniedPrincipal, before.denied, after.denied)
	// Only additions: Update never lets a tombstone go.
	for _, k := range sortedKeys(after.revoked) {
		if _, ok := before.revoked[k]; !ok {
			a := after.revoked[k]
			out = append(out, newChange(kindRevoked, k, nil, &a))
		}
	}
	return out
}

func diffItems(out []change, kind itemKind, before, after map[string]item) []change {
	keys := make([]string, 0, len(after)+len(before))
	for k := range before {
		keys = append(keys, k)
	}
	for k := range after {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range slices.Compact(keys) {
		b, inBefore := before[k]
		a, inAfter := after[k]
		switch {
		case inBefore && inAfter:
			if !bytes.Equal(b.stored, a.stored) {
				out = append(out, newChange(kind, k, &b, &a))
			}
		case inBefore:
			out = append(out, newChange(kind, k, &b, nil))
		default:
			out = append(out, newChange(kind, k, nil, &a))
		}
	}
	return out
}

func newChange(kind itemKind, key string, before, after *item) change {
	c := change{kind: kind, key: key}
	if before != nil {
		c.auditBefore = before.audit
	}
	if after != nil {
		c.after = after.stored
		c.auditAfter = after.audit
	}
	return c
}
