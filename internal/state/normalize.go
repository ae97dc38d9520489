package state

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// DefaultAlertThresholds are the budget alert thresholds, in percent of a cap,
// used when an entitlement names none.
var defaultAlertThresholds = [...]int{50, 80, 100}

// DefaultAlertThresholds returns a fresh copy of the default thresholds.
func DefaultAlertThresholds() []int { return slices.Clone(defaultAlertThresholds[:]) }

// Normalize fills in defaults so that two states meaning the same thing compare
// equal (which Diff relies on). It keeps the order of every list.
//
// When the organization root is not given but a unit or account names a root ID
// as its parent, that ID becomes the root: the state file example does exactly
// this, and shares and scopes can then name the root.
func (s *State) Normalize() {
	if s.Organization.Root == "" {
		s.Organization.Root = s.referencedRoot()
	}
	// The deny list is a set: sorted, as the store returns it.
	slices.Sort(s.DeniedPrincipals)
	s.DeniedPrincipals = slices.Compact(s.DeniedPrincipals)
	for i := range s.Entitlements {
		e := &s.Entitlements[i]
		if e.State == "" {
			e.State = EntitlementActive
		}
		l := &e.Limits
		if l.Count == "" {
			l.Count = CountTotal
		}
		if len(l.AlertThresholds) == 0 {
			l.AlertThresholds = DefaultAlertThresholds()
		}
		if l.OnStoreUnavailable == "" {
			l.OnStoreUnavailable = FailClosed
		}
		if l.Estimate == "" {
			l.Estimate = EstimateTypical
		}
	}
	for i := range s.Credentials {
		c := &s.Credentials[i]
		if c.Kind == KindAPIKey {
			// Hex is case-insensitive; the stored form is lowercase.
			c.KeySHA256 = strings.ToLower(c.KeySHA256)
		}
		if c.ID == "" {
			c.ID = c.DefaultID()
		}
	}
	// Revoked keys are sets: sorted, unlike the lists above.
	s.Revoked.normalize()
}

// DefaultID is the ID a credential gets when none is given: its access key ID
// for sigv4, and "key-" plus the first 16 hex digits of the key's SHA-256 for
// api_key (the hash, not the key, so the ID reveals nothing). It is empty when
// the credential does not carry what the ID derives from (yet).
func (c *Credential) DefaultID() string {
	switch c.Kind {
	case KindSigV4:
		return c.AccessKeyID
	case KindAPIKey:
		if len(c.KeySHA256) >= 16 {
			return "key-" + strings.ToLower(c.KeySHA256[:16])
		}
	}
	return ""
}

// referencedRoot returns the organization root, or else the first root ID a unit
// or account names as its parent.
func (s *State) referencedRoot() string {
	if s.Organization.Root != "" {
		return s.Organization.Root
	}
	for _, u := range s.Organization.Units {
		if IsRootID(u.Parent) {
			return u.Parent
		}
	}
	for _, a := range s.Organization.Accounts {
		if IsRootID(a.Unit) {
			return a.Unit
		}
	}
	return ""
}

// Resolve turns the secret inputs of a credential into what is stored: the secret
// named by SecretEnv into Secret, and Key or the key named by KeyEnv into
// KeySHA256. It clears Key, KeyEnv and SecretEnv afterwards, so a plaintext API
// key never outlives resolution. Errors name environment variables, never values.
func (c *Credential) Resolve(lookupEnv func(string) (string, bool)) error {
	if c.SecretEnv != "" {
		if c.Secret != "" {
			return errors.New("secret and secret_env are both set; use one")
		}
		v, err := envValue(lookupEnv, c.SecretEnv)
		if err != nil {
			return err
		}
		c.Secret = v
	}
	if c.Key != "" && c.KeyEnv != "" {
		return errors.New("key and key_env are both set; use one")
	}
	key := c.Key
	if c.KeyEnv != "" {
		v, err := envValue(lookupEnv, c.KeyEnv)
		if err != nil {
			return err
		}
		key = v
	}
	if key != "" {
		sum := sha256.Sum256([]byte(key))
		h := hex.EncodeToString(sum[:])
		if c.KeySHA256 != "" && !strings.EqualFold(c.KeySHA256, h) {
			return errors.New("key_sha256 does not match the SHA-256 of the key")
		}
		c.KeySHA256 = h
	}
	c.Key, c.KeyEnv, c.SecretEnv = "", "", ""
	return nil
}

func envValue(lookupEnv func(string) (string, bool), name string) (string, error) {
	if lookupEnv == nil {
		return "", fmt.Errorf("environment variable %s is not set", name)
	}
	v, ok := lookupEnv(name)
	switch {
	case !ok:
		return "", fmt.Errorf("environment variable %s is not set", name)
	case v == "":
		return "", fmt.Errorf("environment variable %s is empty", name)
	}
	return v, nil
}

// ResolveSecrets resolves every credential (see Credential.Resolve) and reports
// every failure at once.
func (s *State) ResolveSecrets(lookupEnv func(string) (string, bool)) error {
	var errs []error
	for i := range s.Credentials {
		c := &s.Credentials[i]
		if err := c.Resolve(lookupEnv); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", credentialItem(i, c), err))
		}
	}
	return errors.Join(errs...)
}

// Clone returns a deep copy of s; nil stays nil.
func (s *State) Clone() *State {
	if s == nil {
		return nil
	}
	c := &State{
		Organization: Organization{
			ID:         s.Organization.ID,
			Root:       s.Organization.Root,
			HubAccount: s.Organization.HubAccount,
			Source:     s.Organization.Source,
			Units:      slices.Clone(s.Organization.Units),
			Accounts:   slices.Clone(s.Organization.Accounts),
		},
		Entitlements: slices.Clone(s.Entitlements),
		Credentials:  slices.Clone(s.Credentials),
		Revoked:      s.Revoked.clone(),
	}
	c.DeniedPrincipals = slices.Clone(s.DeniedPrincipals)
	for i := range c.Entitlements {
		e := &c.Entitlements[i]
		e.Scope = slices.Clone(e.Scope)
		e.Operations = slices.Clone(e.Operations)
		e.AsyncOutputPrefixes = slices.Clone(e.AsyncOutputPrefixes)
		e.ServiceTiers = slices.Clone(e.ServiceTiers)
		e.Guardrails = slices.Clone(e.Guardrails)
		e.Shares = slices.Clone(e.Shares)
		for j := range e.Shares {
			e.Shares[j].Principals = slices.Clone(e.Shares[j].Principals)
		}
		e.Limits.AlertThresholds = slices.Clone(e.Limits.AlertThresholds)
	}
	for i := range c.Credentials {
		if t := c.Credentials[i].ExpiresAt; t != nil {
			tt := *t
			c.Credentials[i].ExpiresAt = &tt
		}
	}
	return c
}

// Public returns a deep copy of s without secrets (Secret and Key); KeySHA256
// stays, since it identifies an API key without revealing it.
func (s *State) Public() *State {
	c := s.Clone()
	if c == nil {
		return nil
	}
	for i := range c.Credentials {
		c.Credentials[i].Secret = ""
		c.Credentials[i].Key = ""
	}
	return c
}
