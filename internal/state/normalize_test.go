package state

import (
	"crypto/sha256"
	"encoding/hex"
	"reflect"
	"strings"
	"testing"
	"time"
)

func sha(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func TestResolve(t *testing.T) {
	t.Parallel()
	env := map[string]string{"SECRET": "env-secret-0123456789", "KEY": "env-api-key", "EMPTY": ""}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	tests := []struct {
		name    string
		in      Credential
		want    Credential
		wantErr string
	}{
		{name: "secret from env", in: Credential{Kind: KindSigV4, SecretEnv: "SECRET"}, want: Credential{Kind: KindSigV4, Secret: "env-secret-0123456789"}},
		{name: "inline secret kept", in: Credential{Kind: KindSigV4, Secret: "inline"}, want: Credential{Kind: KindSigV4, Secret: "inline"}},
		{name: "key from env", in: Credential{Kind: KindAPIKey, KeyEnv: "KEY"}, want: Credential{Kind: KindAPIKey, KeySHA256: sha("env-api-key")}},
		{name: "inline key hashed", in: Credential{Kind: KindAPIKey, Key: "k1"}, want: Credential{Kind: KindAPIKey, KeySHA256: sha("k1")}},
		{name: "key matches given hash", in: Credential{Kind: KindAPIKey, Key: "k1", KeySHA256: strings.ToUpper(sha("k1"))}, want: Credential{Kind: KindAPIKey, KeySHA256: sha("k1")}},
		{name: "hash only", in: Credential{Kind: KindAPIKey, KeySHA256: sha("x")}, want: Credential{Kind: KindAPIKey, KeySHA256: sha("x")}},
		{name: "missing secret env", in: Credential{SecretEnv: "NOPE"}, wantErr: "environment variable NOPE is not set"},
		{name: "empty secret env", in: Credential{SecretEnv: "EMPTY"}, wantErr: "environment variable EMPTY is empty"},
		{name: "missing key env", in: Credential{KeyEnv: "NOKEY"}, wantErr: "environment variable NOKEY is not set"},
		{name: "secret twice", in: Credential{Secret: "a", SecretEnv: "SECRET"}, wantErr: "secret and secret_env are both set"},
		{name: "key twice", in: Credential{Key: "a", KeyEnv: "KEY"}, wantErr: "key and key_env are both set"},
		{name: "key contradicts hash", in: Credential{Key: "k1", KeySHA256: sha("k2")}, wantErr: "does not match"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := tt.in
			err := c.Resolve(lookup)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Resolve error = %v, want %q", err, tt.wantErr)
				}
				for _, v := range env {
					if v != "" && strings.Contains(err.Error(), v) {
						t.Errorf("error %q leaks a secret", err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c != tt.want {
				t.Errorf("Resolve = %+v, want %+v", c, tt.want)
			}
		})
	}
}

func TestResolveSecretsReportsAll(t *testing.T) {
	t.Parallel()
	s := &State{Credentials: []Credential{
		{AccessKeyID: "GWA", SecretEnv: "A"},
		{Label: "ok", Secret: "x"},
		{Label: "b", KeyEnv: "B"},
	}}
	err := s.ResolveSecrets(func(string) (string, bool) { return "", false })
	if err == nil {
		t.Fatal("ResolveSecrets succeeded")
	}
	for _, want := range []string{"credentials[0] (GWA): environment variable A is not set", "credentials[2] (b): environment variable B is not set"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "credentials[1]") {
		t.Errorf("error %q names a good credential", err)
	}
}

func TestNormalize(t *testing.T) {
	t.Parallel()
	s := &State{
		Organization: Organization{Units: []Unit{{ID: "ou-ab12-12345678", Parent: "r-ab12"}}},
		Entitlements: []Entitlement{
			{Name: "b"},
			{Name: "a", State: EntitlementSuspended, Limits: Limits{Count: CountInput, AlertThresholds: []int{90}, OnStoreUnavailable: FailOpen, Estimate: EstimateStrict}},
		},
		Credentials: []Credential{
			{Kind: KindSigV4, AccessKeyID: "GWEXAMPLE00000000001"},
			{Kind: KindAPIKey, KeySHA256: strings.ToUpper(sha("k"))},
			{Kind: KindAPIKey, ID: "mine", KeySHA256: sha("k2")},
		},
	}
	s.Normalize()
	if s.Organization.Root != "r-ab12" {
		t.Errorf("root = %q, want the referenced root", s.Organization.Root)
	}
	if e := s.Entitlements[0]; e.Name != "b" || e.State != EntitlementActive || !reflect.DeepEqual(e.Limits,
		Limits{Count: CountTotal, AlertThresholds: []int{50, 80, 100}, OnStoreUnavailable: FailClosed, Estimate: EstimateTypical}) {
		t.Errorf("defaults not applied (or order changed): %+v", e)
	}
	if e := s.Entitlements[1]; e.State != EntitlementSuspended || !reflect.DeepEqual(e.Limits,
		Limits{Count: CountInput, AlertThresholds: []int{90}, OnStoreUnavailable: FailOpen, Estimate: EstimateStrict}) {
		t.Errorf("explicit values changed: %+v", e)
	}
	if got := []string{s.Credentials[0].ID, s.Credentials[1].ID, s.Credentials[2].ID}; !reflect.DeepEqual(got,
		[]string{"GWEXAMPLE00000000001", "key-" + sha("k")[:16], "mine"}) {
		t.Errorf("credential IDs = %v", got)
	}
	if s.Credentials[1].KeySHA256 != sha("k") {
		t.Errorf("key_sha256 not lowercased: %s", s.Credentials[1].KeySHA256)
	}
	// The default thresholds are not shared between entitlements.
	s.Entitlements[0].Limits.AlertThresholds[0] = 1
	if DefaultAlertThresholds()[0] != 50 {
		t.Error("defaults are shared mutable state")
	}
}

func TestCloneIsDeep(t *testing.T) {
	t.Parallel()
	s := validState()
	exp := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	s.Credentials[0].ExpiresAt = &exp
	s.Normalize()
	c := s.Clone()
	if !reflect.DeepEqual(s, c) {
		t.Fatal("clone differs")
	}
	c.Organization.Units[0].Name = "x"
	c.Organization.Accounts[0].Name = "x"
	c.Entitlements[1].Scope[0] = "x"
	c.Entitlements[1].Operations[0] = "x"
	c.Entitlements[1].AsyncOutputPrefixes[0] = "x"
	c.Entitlements[1].Shares[0].Target = "x"
	c.Entitlements[1].Limits.AlertThresholds[0] = 7
	c.Credentials[0].Secret = "x"
	*c.Credentials[0].ExpiresAt = time.Time{}
	if !reflect.DeepEqual(s, func() *State { v := validState(); v.Credentials[0].ExpiresAt = &exp; v.Normalize(); return v }()) {
		t.Error("mutating the clone changed the original")
	}
	if (*State)(nil).Clone() != nil || (*State)(nil).Public() != nil {
		t.Error("nil state must clone to nil")
	}
}

func TestPublic(t *testing.T) {
	t.Parallel()
	s := validState()
	s.Credentials[1].Key = "plaintext"
	p := s.Public()
	if p.Credentials[0].Secret != "" || p.Credentials[1].Key != "" {
		t.Errorf("Public kept secrets: %+v", p.Credentials)
	}
	if p.Credentials[1].KeySHA256 != s.Credentials[1].KeySHA256 || p.Credentials[0].AccessKeyID != s.Credentials[0].AccessKeyID {
		t.Error("Public dropped non-secret fields")
	}
	if s.Credentials[0].Secret == "" || s.Credentials[1].Key == "" {
		t.Error("Public changed the original")
	}
	out, err := Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "0123456789abcdef") || strings.Contains(string(out), "plaintext") {
		t.Errorf("marshalled public state leaks a secret:\n%s", out)
	}
}

func TestReferences(t *testing.T) {
	t.Parallel()
	s := validState()
	s.Entitlements[0].Scope = []string{ouOther, acctLeaf}
	s.Entitlements[0].Shares = append(s.Entitlements[0].Shares, Share{Target: acctLeaf})
	s.Normalize()
	tests := []struct {
		id   string
		want []string
	}{
		{ouTop, []string{"unit " + ouMid + " (parent)", "entitlement top-only scope"}},
		{ouMid, []string{"unit " + ouLeaf + " (parent)", "entitlement top-only share"}},
		{ouLeaf, []string{"account " + acctLeaf + " (in OU)"}},
		{ouOther, []string{"account " + acctOth + " (in OU)", "entitlement whole-org scope"}},
		{acctLeaf, []string{"entitlement whole-org scope", "entitlement whole-org share", "entitlement top-only share", "credential GWTEST00000000000001"}},
		{acctOth, []string{"credential key-" + strings.Repeat("ab", 8)}},
		{acctHub, []string{"organization hub_account"}},
		{"444444444444", nil},
		{"", nil},
	}
	for _, tt := range tests {
		if got := s.References(tt.id); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("References(%q) = %q, want %q", tt.id, got, tt.want)
		}
	}
}
