package state

import (
	"fmt"
	"slices"
	"strings"
)

// KindRevoked is the Change kind of a tombstone: an access key ID (ID "GW…")
// or an API key hash (ID "sha256:<hex>") that is never accepted again.
const KindRevoked = "revoked"

// Revoked lists the keys of removed credentials: tombstones that outlive the
// credential, so that no later apply, bootstrap or restore can bring a revoked
// key back. Tombstones are only ever added (Carry keeps them), never removed.
// After Normalize both lists are sorted and free of duplicates.
type Revoked struct {
	// AccessKeyIDs of revoked sigv4 credentials.
	AccessKeyIDs []string `yaml:"access_key_ids,omitempty" json:"access_key_ids,omitempty"`
	// APIKeySHA256 are the SHA-256 (lowercase hex) of revoked API keys.
	APIKeySHA256 []string `yaml:"api_key_sha256,omitempty" json:"api_key_sha256,omitempty"`
}

// IsZero reports whether nothing is revoked.
func (r Revoked) IsZero() bool { return len(r.AccessKeyIDs) == 0 && len(r.APIKeySHA256) == 0 }

// keys returns the tombstones in the form credentialKey gives a credential's
// key, for lookups.
func (r *Revoked) keys() map[string]bool {
	m := make(map[string]bool, len(r.AccessKeyIDs)+len(r.APIKeySHA256))
	for _, id := range r.AccessKeyIDs {
		m["ak:"+id] = true
	}
	for _, h := range r.APIKeySHA256 {
		m["sha256:"+strings.ToLower(h)] = true
	}
	return m
}

func (r *Revoked) clone() Revoked {
	return Revoked{AccessKeyIDs: slices.Clone(r.AccessKeyIDs), APIKeySHA256: slices.Clone(r.APIKeySHA256)}
}

// normalize sorts both lists (they are sets: order carries no meaning) and
// drops duplicates; empty lists become nil so that equal sets compare equal.
func (r *Revoked) normalize() {
	for i, h := range r.APIKeySHA256 {
		r.APIKeySHA256[i] = strings.ToLower(h)
	}
	set := func(s []string) []string {
		if len(s) == 0 {
			return nil
		}
		slices.Sort(s)
		return slices.Compact(s)
	}
	r.AccessKeyIDs = set(r.AccessKeyIDs)
	r.APIKeySHA256 = set(r.APIKeySHA256)
}

// Carry makes s keep every revocation of prev: prev's tombstones, plus a
// tombstone for every key one of prev's credentials held that none of s's
// holds any more (a credential revoked, pruned, or removed with its account).
// Every writer of the state calls it with the state it started from, so that
// no change can drop a tombstone or remove a credential without leaving one.
// It returns how many tombstones s gained.
func (s *State) Carry(prev *State) int {
	if prev == nil {
		return 0
	}
	before := len(s.Revoked.AccessKeyIDs) + len(s.Revoked.APIKeySHA256)
	s.Revoked.AccessKeyIDs = append(s.Revoked.AccessKeyIDs, prev.Revoked.AccessKeyIDs...)
	s.Revoked.APIKeySHA256 = append(s.Revoked.APIKeySHA256, prev.Revoked.APIKeySHA256...)
	held := make(map[string]bool, len(s.Credentials))
	for i := range s.Credentials {
		if k := credentialKey(&s.Credentials[i]); k != "" {
			held[k] = true
		}
	}
	for i := range prev.Credentials {
		c := &prev.Credentials[i]
		k := credentialKey(c)
		if k == "" || held[k] {
			continue
		}
		switch c.Kind {
		case KindSigV4:
			s.Revoked.AccessKeyIDs = append(s.Revoked.AccessKeyIDs, c.AccessKeyID)
		case KindAPIKey:
			s.Revoked.APIKeySHA256 = append(s.Revoked.APIKeySHA256, c.KeySHA256)
		}
	}
	s.Revoked.normalize()
	return len(s.Revoked.AccessKeyIDs) + len(s.Revoked.APIKeySHA256) - before
}

// credentialKey identifies the key a credential authenticates with, across
// kinds; "" when it has none (yet).
func credentialKey(c *Credential) string {
	switch c.Kind {
	case KindSigV4:
		if c.AccessKeyID != "" {
			return "ak:" + c.AccessKeyID
		}
	case KindAPIKey:
		if c.KeySHA256 != "" {
			return "sha256:" + strings.ToLower(c.KeySHA256)
		}
	}
	return ""
}

// hashPrefix shows enough of a key hash to tell keys apart, as credential IDs
// of API keys do.
func hashPrefix(h string) string {
	if len(h) > 16 {
		return h[:16] + "…"
	}
	return h
}

// revoked checks the tombstones' formats.
func (v *validator) revoked() {
	r := &v.s.Revoked
	for i, id := range r.AccessKeyIDs {
		if !IsAccessKeyID(id) {
			v.add(fmt.Sprintf("revoked.access_key_ids[%d]", i), "%q is not an access key ID (GW and 18 uppercase letters or digits)", id)
		}
	}
	for i, h := range r.APIKeySHA256 {
		if !isKeySHA256(strings.ToLower(h)) {
			v.add(fmt.Sprintf("revoked.api_key_sha256[%d]", i), "must be 64 hex digits")
		}
	}
}

// revokedCredential refuses a credential whose key was revoked: it must not
// come back, whatever file is applied. The message names the key (never a
// secret: an access key ID, or an API key's label and hash prefix).
func (v *validator) revokedCredential(item string, c *Credential) {
	if v.revokedKeys == nil {
		v.revokedKeys = v.s.Revoked.keys()
	}
	if k := credentialKey(c); k == "" || !v.revokedKeys[k] {
		return
	}
	switch c.Kind {
	case KindSigV4:
		v.add(item, "access key %s was revoked and is never accepted again; issue a new key instead", c.AccessKeyID)
	case KindAPIKey:
		v.add(item, "API key %q (key_sha256 %s) was revoked and is never accepted again; issue a new key instead",
			c.Label, hashPrefix(strings.ToLower(c.KeySHA256)))
	}
}

// diffRevoked lists tombstones added (and, between arbitrary states, removed).
func diffRevoked(out []Change, old, new *Revoked) []Change {
	type entry struct{ id, detail string }
	collect := func(r *Revoked) map[string]entry {
		m := make(map[string]entry, len(r.AccessKeyIDs)+len(r.APIKeySHA256))
		for _, id := range r.AccessKeyIDs {
			m[id] = entry{id, "access key"}
		}
		for _, h := range r.APIKeySHA256 {
			h = strings.ToLower(h)
			m["sha256:"+h] = entry{"sha256:" + h, "API key"}
		}
		return m
	}
	a, b := collect(old), collect(new)
	var keys []string
	for k := range a {
		if _, ok := b[k]; !ok {
			keys = append(keys, k)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		if e, ok := b[k]; ok {
			out = append(out, Change{KindRevoked, OpCreate, e.id, e.detail})
		} else {
			out = append(out, Change{KindRevoked, OpDelete, a[k].id, a[k].detail})
		}
	}
	return out
}
