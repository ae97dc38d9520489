// Package authn authenticates member applications: SigV4 signatures made with
// gateway-issued access keys, and bearer API keys stored only as SHA-256.
package authn

import "time"

// Credential is what authentication needs to know about one issued credential.
type Credential struct {
	ID      string
	Account string // 12-digit member account
	Label   string // the application
	Kind    string // "sigv4" or "api_key"
	// Secret is the SigV4 secret access key (sigv4 only). Never log it.
	Secret    string
	ExpiresAt time.Time // zero: never
	// Principal is the canonical IAM role or user ARN (no path, no session)
	// of an IAM identity; empty for gateway-issued credentials. The ledger
	// records it, and it is computed once per verified token, not per call.
	Principal string
}

// Lookup finds credentials; the authorization snapshot implements it, so
// authentication never calls Redis on the hot path.
type Lookup interface {
	ByAccessKeyID(accessKeyID string) (*Credential, bool)
	ByAPIKeyHash(sum [32]byte) (*Credential, bool)
}
