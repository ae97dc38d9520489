// Package state owns the gateway's declarative state: the organization, managed
// entitlements with their shares and limits, and member credentials, in the form
// used by the state file, the admin API and the store. It validates every ID and
// cross-reference; it holds no runtime behaviour.
package state

import "time"

// State is the whole desired state, as in a state file.
type State struct {
	Organization Organization  `yaml:"organization" json:"organization"`
	Entitlements []Entitlement `yaml:"entitlements,omitempty" json:"entitlements"`
	Credentials  []Credential  `yaml:"credentials,omitempty" json:"credentials"`
	// Revoked keys are never accepted again (see Revoked).
	Revoked Revoked `yaml:"revoked,omitempty" json:"revoked,omitzero"`
	// DeniedPrincipals are IAM principal patterns (as in Share.Principals)
	// refused before anything else, like a revoked key: the emergency stop
	// for a member's IAM role or user.
	DeniedPrincipals []string `yaml:"denied_principals,omitempty" json:"denied_principals,omitempty"`
}

// Organization is the AWS Organization tree the hub shares into.
type Organization struct {
	ID         string    `yaml:"id" json:"id"`                   // o-xxxxxxxxxx
	Root       string    `yaml:"root,omitempty" json:"root"`     // r-xxxx; optional
	HubAccount string    `yaml:"hub_account" json:"hub_account"` // 12 digits
	Units      []Unit    `yaml:"units,omitempty" json:"units"`
	Accounts   []Account `yaml:"accounts,omitempty" json:"accounts"`
	// Source says where the organization comes from: OrgSourceAWS once
	// `gateway org sync` (or serve --org-sync-interval) wrote it; empty when
	// it was typed into a state file. An apply that replaces a synced
	// organization warns that the next sync will overwrite it.
	Source string `yaml:"source,omitempty" json:"source,omitempty"`
}

// OrgSourceAWS is Organization.Source when AWS Organizations is the source.
const OrgSourceAWS = "aws-organizations"

// Unit is an organizational unit. An empty Parent (or the root ID) means the root.
type Unit struct {
	ID     string `yaml:"id" json:"id"`
	Name   string `yaml:"name" json:"name"`
	Parent string `yaml:"parent,omitempty" json:"parent,omitempty"`
}

// Account is a member account. An empty Unit (or the root ID) means the root.
// An empty Team defaults to the name of the account's OU (or "root").
type Account struct {
	ID   string `yaml:"id" json:"id"`
	Name string `yaml:"name" json:"name"`
	Unit string `yaml:"unit,omitempty" json:"unit,omitempty"`
	Team string `yaml:"team,omitempty" json:"team,omitempty"`
	// State is the account's standing in AWS Organizations (org sync sets
	// it): active (empty) or suspended or closed, which lose access at once
	// while the record, its shares and credentials are kept.
	State string `yaml:"state,omitempty" json:"state,omitempty"`
}

// Account states.
const (
	AccountActive    = "active"
	AccountSuspended = "suspended"
	AccountClosed    = "closed"
)

// Active reports whether the account may call the gateway.
func (a *Account) Active() bool { return a.State == "" || a.State == AccountActive }

// Entitlement states.
const (
	EntitlementActive    = "active"
	EntitlementSuspended = "suspended"
)

// Entitlement is a managed entitlement: a named share of one upstream model.
type Entitlement struct {
	Name        string   `yaml:"name" json:"name"`
	Model       string   `yaml:"model" json:"model"`
	Region      string   `yaml:"region,omitempty" json:"region,omitempty"`
	Description string   `yaml:"description,omitempty" json:"description,omitempty"`
	Scope       []string `yaml:"scope,omitempty" json:"scope"`
	Limits      Limits   `yaml:"limits,omitempty" json:"limits"`
	// Operations lists allowed runtime operation names; empty means all.
	Operations []string  `yaml:"operations,omitempty" json:"operations,omitempty"`
	State      string    `yaml:"state,omitempty" json:"state"` // active (default) or suspended
	Shares     []Share   `yaml:"shares,omitempty" json:"shares"`
	CreatedAt  time.Time `yaml:"created_at,omitempty" json:"created_at,omitzero"`
	UpdatedAt  time.Time `yaml:"updated_at,omitempty" json:"updated_at,omitzero"`

	// AsyncOutputPrefixes are the S3 locations StartAsyncInvoke may write to
	// (s3://bucket[/path], "{account}" standing for the caller's account ID);
	// ["*"] allows any. Empty refuses StartAsyncInvoke: Bedrock writes the
	// output with the hub's identity, so the member must not choose freely.
	AsyncOutputPrefixes []string `yaml:"async_output_prefixes,omitempty" json:"async_output_prefixes,omitempty"`
	// ServiceTiers lists the service tiers members may ask for (priority,
	// flex, reserved, default) and "optimized" for latency-optimized
	// inference; the default tier is always allowed, so empty means default only.
	ServiceTiers []string `yaml:"service_tiers,omitempty" json:"service_tiers,omitempty"`
	// Guardrails lists the guardrails (IDs or ARNs) members may name in a
	// request or apply with ApplyGuardrail; empty means none.
	Guardrails []string `yaml:"guardrails,omitempty" json:"guardrails,omitempty"`
}

// Limit option values.
const (
	CountTotal  = "total"
	CountInput  = "input"
	CountOutput = "output"

	FailClosed = "fail_closed"
	FailOpen   = "fail_open"

	EstimateTypical = "typical"
	EstimateStrict  = "strict"
)

// Limits of an entitlement. Zero means "no limit" for every numeric cap.
type Limits struct {
	MonthlyTokens        int64 `yaml:"monthly_tokens,omitempty" json:"monthly_tokens,omitempty"`
	AccountMonthlyTokens int64 `yaml:"account_monthly_tokens,omitempty" json:"account_monthly_tokens,omitempty"`
	RequestsPerMinute    int64 `yaml:"requests_per_minute,omitempty" json:"requests_per_minute,omitempty"`
	TokensPerMinute      int64 `yaml:"tokens_per_minute,omitempty" json:"tokens_per_minute,omitempty"`
	// Count is which tokens count against caps: total (default), input or output.
	Count string `yaml:"count,omitempty" json:"count,omitempty"`
	// AlertThresholds in percent of each cap; default 50, 80, 100.
	AlertThresholds []int `yaml:"alert_thresholds,omitempty" json:"alert_thresholds,omitempty"`
	// OnStoreUnavailable is fail_closed (default) or fail_open.
	OnStoreUnavailable string `yaml:"on_store_unavailable,omitempty" json:"on_store_unavailable,omitempty"`
	// Estimate is how request tokens are estimated before the call: typical
	// (default, body bytes/4) or strict (body bytes, a true upper bound).
	Estimate string `yaml:"estimate,omitempty" json:"estimate,omitempty"`
}

// Share grants an entitlement to an account, an OU or the organization.
type Share struct {
	Target        string `yaml:"target" json:"target"`
	MonthlyTokens int64  `yaml:"monthly_tokens,omitempty" json:"monthly_tokens,omitempty"`
	// Principals narrows the share to IAM roles or users of the covered
	// accounts (arn:aws:iam::ACCT:role/NAME or user/NAME, * in the name);
	// empty means every caller of the accounts. Gateway-issued credentials
	// never match a share that names principals.
	Principals []string `yaml:"principals,omitempty" json:"principals,omitempty"`
}

// Credential kinds.
const (
	KindSigV4  = "sigv4"
	KindAPIKey = "api_key"
)

// Credential authenticates one application of one member account.
//
// For sigv4 the gateway must hold the secret to verify signatures (as AWS does);
// for api_key only the SHA-256 of the key is kept. Secret, SecretEnv, Key and
// KeyEnv are inputs only: Resolve turns them into Secret and KeySHA256, and
// Public strips secrets before anything is listed.
type Credential struct {
	ID          string     `yaml:"id,omitempty" json:"id"`
	Account     string     `yaml:"account" json:"account"`
	Kind        string     `yaml:"kind" json:"kind"`
	Label       string     `yaml:"label,omitempty" json:"label"`
	AccessKeyID string     `yaml:"access_key_id,omitempty" json:"access_key_id,omitempty"`
	Secret      string     `yaml:"secret,omitempty" json:"secret,omitempty"`
	SecretEnv   string     `yaml:"secret_env,omitempty" json:"secret_env,omitempty"`
	KeySHA256   string     `yaml:"key_sha256,omitempty" json:"key_sha256,omitempty"`
	Key         string     `yaml:"key,omitempty" json:"key,omitempty"`
	KeyEnv      string     `yaml:"key_env,omitempty" json:"key_env,omitempty"`
	ExpiresAt   *time.Time `yaml:"expires_at,omitempty" json:"expires_at,omitempty"`
	CreatedAt   time.Time  `yaml:"created_at,omitempty" json:"created_at,omitzero"`
}
