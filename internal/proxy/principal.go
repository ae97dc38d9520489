package proxy

import "github.com/bedrock-gateway/gateway/internal/authn"

// principal is the caller's IAM principal ARN, or "" for gateway-issued
// credentials (whose Label is only a free-form name, never a principal).
func (c *call) principal() string {
	if c.cred == nil || c.cred.Kind != authn.KindIAM {
		return ""
	}
	return c.cred.Label
}

// ledgerPrincipal is the caller's canonical IAM principal (role or user ARN,
// no path, no session), computed once when its token was verified; "" for
// gateway-issued credentials.
func (c *call) ledgerPrincipal() string {
	if c.cred == nil || c.cred.Kind != authn.KindIAM {
		return ""
	}
	return c.cred.Principal
}
