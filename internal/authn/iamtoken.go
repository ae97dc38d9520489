package authn

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/bedrock-gateway/gateway/internal/bedrock"
	"github.com/bedrock-gateway/gateway/pkg/iamtoken"
)

// IAM identity tokens (issue 13): a member presigns STS GetCallerIdentity
// with its own credentials and sends the URL as a bearer token; the gateway
// executes it against STS to learn who signed it. ParseIAMToken is the first,
// offline half: it refuses anything that is not exactly the documented shape
// (pkg/iamtoken), so that the gateway never sends STS (or anyone else) a
// request it did not mean to send.

// Errors of ParseIAMToken, for errors.Is. Every error it returns is an
// *IAMTokenError wrapping one of them.
var (
	ErrIAMTokenInvalid     = errors.New("invalid IAM identity token")
	ErrIAMTokenExpired     = errors.New("expired IAM identity token")
	ErrIAMTokenNotYetValid = errors.New("IAM identity token not yet valid")
)

// IAMTokenError is a refused IAM identity token. Reason says why, for the
// gateway's log; it never contains the token (which is a credential for up
// to 15 minutes). The client sees only BedrockError's generic message.
type IAMTokenError struct {
	Kind   error // ErrIAMTokenInvalid, ErrIAMTokenExpired or ErrIAMTokenNotYetValid
	Reason string
}

func (e *IAMTokenError) Error() string { return e.Kind.Error() + ": " + e.Reason }
func (e *IAMTokenError) Unwrap() error { return e.Kind }

// BedrockError is the client-facing error, worded as AWS words it for a bad
// or expired security token or a signature dated in the future.
func (e *IAMTokenError) BedrockError() *bedrock.Error {
	switch e.Kind {
	case ErrIAMTokenExpired:
		return errExpiredToken()
	case ErrIAMTokenNotYetValid:
		return bedrock.BadSignature("Signature not yet current.")
	}
	return errInvalidToken()
}

// As lets errors.As(err, **bedrock.Error) find the client-facing error, so
// that the proxy's single mapping (toBedrockError) handles it unchanged.
func (e *IAMTokenError) As(target any) bool {
	if p, ok := target.(**bedrock.Error); ok {
		*p = e.BedrockError()
		return true
	}
	return false
}

func iamInvalid(format string, args ...any) *IAMTokenError {
	return &IAMTokenError{Kind: ErrIAMTokenInvalid, Reason: fmt.Sprintf(format, args...)}
}

// IAMTokenOptions configure ParseIAMToken.
type IAMTokenOptions struct {
	// GatewayID is this gateway's id, sent as the signed audience header.
	// Required.
	GatewayID string
	// AllowedOrigin is the origin of --sts-endpoint ("https://host[:port]",
	// or http for a local simulator), accepted besides the AWS STS hosts.
	// Matched exactly: scheme, host and port as written. Optional.
	AllowedOrigin string
	// Now is the clock; default time.Now.
	Now func() time.Time
	// MaxSkew is how far in the future a token may be dated; default 5m.
	MaxSkew time.Duration
}

// IAMTokenRequest is what verifying a well-formed token needs: the presigned
// URL to GET with Header, and facts about the token for logging and limits.
type IAMTokenRequest struct {
	URL         string      // the presigned GetCallerIdentity URL, to GET as is
	Header      http.Header // x-bedrock-gateway-id: the gateway id (signed by the token)
	AccessKeyID string      // the signer's access key ID (not a secret)
	Region      string      // the credential scope's region
	SignedAt    time.Time
	Expires     time.Time // SignedAt + X-Amz-Expires
	Temporary   bool      // the token carries X-Amz-Security-Token
}

// maxIAMTokenLen bounds the token before decoding. A presigned URL is about
// 500 bytes plus the session token, which for role sessions is 1-3 KB.
const maxIAMTokenLen = 12 << 10

// iamTokenParams are the query parameters a token has: true when required.
var iamTokenParams = map[string]bool{
	"Action":               true,
	"Version":              true,
	"X-Amz-Algorithm":      true,
	"X-Amz-Credential":     true,
	"X-Amz-Date":           true,
	"X-Amz-Expires":        true,
	"X-Amz-SignedHeaders":  true,
	"X-Amz-Signature":      true,
	"X-Amz-Security-Token": false,
}

var (
	// stsHostRE matches the AWS STS hosts: global, regional, FIPS, China.
	// Region names: two letters, dash-separated words, a number (us-east-1,
	// us-gov-west-1, ap-southeast-3).
	stsHostRE     = regexp.MustCompile(`^sts(-fips)?\.([a-z]{2}(?:-[a-z]+)+-[0-9]{1,2})\.amazonaws\.com(\.cn)?$`)
	accessKeyIDRE = regexp.MustCompile(`^[A-Z0-9]{16,128}$`)
	regionRE      = regexp.MustCompile(`^[a-z0-9-]{1,32}$`)
	signatureRE   = regexp.MustCompile(`^[0-9a-f]{64}$`)
	headerNameRE  = regexp.MustCompile(`^[a-z0-9-]{1,64}$`)
)

// ParseIAMToken decodes token (with its "bgw-iam-v1." prefix) and checks,
// without any network call, that it is exactly a presigned STS
// GetCallerIdentity for this gateway, within its validity. It does not check
// the signature: STS does, when the verifier GETs the URL.
func ParseIAMToken(token string, opts IAMTokenOptions) (*IAMTokenRequest, error) {
	if opts.GatewayID == "" {
		// Misconfiguration, not the client's fault; never accept without an audience.
		return nil, errors.New("parsing IAM token: no gateway id configured")
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	maxSkew := opts.MaxSkew
	if maxSkew <= 0 {
		maxSkew = defaultMaxSkew
	}

	body, ok := strings.CutPrefix(token, iamtoken.Prefix)
	if !ok {
		return nil, iamInvalid("no %q prefix", iamtoken.Prefix)
	}
	if len(body) > maxIAMTokenLen {
		return nil, iamInvalid("token longer than %d bytes", maxIAMTokenLen)
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(body)
	if err != nil {
		return nil, iamInvalid("not unpadded base64url")
	}
	rawURL := string(raw)
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, iamInvalid("not a URL")
	}
	if err := checkIAMTokenOrigin(u, opts.AllowedOrigin); err != nil {
		return nil, err
	}
	if u.Path != "/" || u.RawPath != "" || u.Opaque != "" || u.User != nil || u.Fragment != "" || u.RawFragment != "" {
		return nil, iamInvalid("URL is not the STS root with a query")
	}

	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return nil, iamInvalid("malformed query")
	}
	p := make(map[string]string, len(q))
	for k, vs := range q {
		if _, known := iamTokenParams[k]; !known {
			return nil, iamInvalid("query parameter %q not allowed", truncate(k, 32))
		}
		if len(vs) != 1 {
			return nil, iamInvalid("query parameter %q repeated", k)
		}
		p[k] = vs[0]
	}
	for k, required := range iamTokenParams {
		if _, has := p[k]; required && !has {
			return nil, iamInvalid("query parameter %q missing", k)
		}
	}
	if p["Action"] != "GetCallerIdentity" || p["Version"] != "2011-06-15" {
		return nil, iamInvalid("not GetCallerIdentity version 2011-06-15")
	}
	if p["X-Amz-Algorithm"] != "AWS4-HMAC-SHA256" {
		return nil, iamInvalid("algorithm is not AWS4-HMAC-SHA256")
	}
	if !signatureRE.MatchString(p["X-Amz-Signature"]) {
		return nil, iamInvalid("malformed signature")
	}
	tok, temporary := p["X-Amz-Security-Token"]
	if temporary && tok == "" {
		return nil, iamInvalid("empty security token")
	}
	if err := checkIAMSignedHeaders(p["X-Amz-SignedHeaders"]); err != nil {
		return nil, err
	}

	signedAt, err := time.Parse(amzDateFormat, p["X-Amz-Date"])
	if err != nil || signedAt.Format(amzDateFormat) != p["X-Amz-Date"] {
		return nil, iamInvalid("malformed X-Amz-Date")
	}
	akid, region, err := parseIAMCredential(p["X-Amz-Credential"], p["X-Amz-Date"][:8])
	if err != nil {
		return nil, err
	}
	expires, err := parseIAMExpires(p["X-Amz-Expires"])
	if err != nil {
		return nil, err
	}
	expiresAt := signedAt.Add(expires)
	t := now()
	if !t.Before(expiresAt) {
		return nil, &IAMTokenError{Kind: ErrIAMTokenExpired, Reason: "expired at " + expiresAt.Format(time.RFC3339)}
	}
	if signedAt.After(t.Add(maxSkew)) {
		return nil, &IAMTokenError{Kind: ErrIAMTokenNotYetValid, Reason: "dated " + signedAt.Format(time.RFC3339)}
	}

	return &IAMTokenRequest{
		URL:         rawURL,
		Header:      http.Header{http.CanonicalHeaderKey(iamtoken.GatewayIDHeader): {opts.GatewayID}},
		AccessKeyID: akid,
		Region:      region,
		SignedAt:    signedAt,
		Expires:     expiresAt,
		Temporary:   temporary,
	}, nil
}

// checkIAMTokenOrigin accepts https to an AWS STS host (no port), or exactly
// the allowed origin. Nothing else: the verifier connects to this origin,
// so anything looser is an SSRF.
func checkIAMTokenOrigin(u *url.URL, allowed string) error {
	if allowed != "" && u.Scheme+"://"+u.Host == strings.TrimSuffix(allowed, "/") {
		return nil
	}
	if u.Scheme != "https" {
		return iamInvalid("scheme %q not allowed", truncate(u.Scheme, 16))
	}
	if !isAWSSTSHost(u.Host) {
		return iamInvalid("host %q not allowed", truncate(u.Host, 64))
	}
	return nil
}

// isAWSSTSHost reports whether host (no port) is sts.amazonaws.com or a
// regional STS host: sts.<region>.amazonaws.com, its FIPS form
// sts-fips.<region>.amazonaws.com, or sts.<cn-region>.amazonaws.com.cn.
func isAWSSTSHost(host string) bool {
	if host == "sts.amazonaws.com" {
		return true
	}
	m := stsHostRE.FindStringSubmatch(host)
	if m == nil {
		return false
	}
	fips, region, china := m[1] != "", m[2], m[3] != ""
	isCNRegion := strings.HasPrefix(region, "cn-")
	return china == isCNRegion && !(china && fips)
}

// checkIAMSignedHeaders requires host and the audience header among the
// signed headers, listed as SigV4 lists them (lowercase, sorted, unique).
func checkIAMSignedHeaders(v string) error {
	names := strings.Split(v, ";")
	var host, audience bool
	for i, n := range names {
		if !headerNameRE.MatchString(n) || (i > 0 && n <= names[i-1]) {
			return iamInvalid("malformed X-Amz-SignedHeaders")
		}
		host = host || n == "host"
		audience = audience || n == iamtoken.GatewayIDHeader
	}
	if !host || !audience {
		return iamInvalid("%s and host must be signed headers", iamtoken.GatewayIDHeader)
	}
	return nil
}

// parseIAMCredential splits "AKID/yyyymmdd/region/sts/aws4_request" and
// returns the access key ID and region.
func parseIAMCredential(v, day string) (akid, region string, err error) {
	parts := strings.Split(v, "/")
	if len(parts) != 5 {
		return "", "", iamInvalid("malformed X-Amz-Credential")
	}
	if !accessKeyIDRE.MatchString(parts[0]) {
		return "", "", iamInvalid("malformed access key ID")
	}
	if parts[1] != day {
		return "", "", iamInvalid("credential scope date is not X-Amz-Date's")
	}
	if !regionRE.MatchString(parts[2]) {
		return "", "", iamInvalid("malformed credential scope region")
	}
	if parts[3] != "sts" || parts[4] != "aws4_request" {
		return "", "", iamInvalid("credential scope is not sts/aws4_request")
	}
	return parts[0], parts[2], nil
}

// parseIAMExpires parses X-Amz-Expires: plain decimal seconds, 1 to 900.
func parseIAMExpires(v string) (time.Duration, error) {
	if v == "" || len(v) > 3 || v[0] == '0' || strings.Trim(v, "0123456789") != "" {
		return 0, iamInvalid("malformed X-Amz-Expires")
	}
	n, err := strconv.Atoi(v)
	if err != nil || time.Duration(n)*time.Second > iamtoken.MaxExpires {
		return 0, iamInvalid("X-Amz-Expires above %d", int(iamtoken.MaxExpires/time.Second))
	}
	return time.Duration(n) * time.Second, nil
}
