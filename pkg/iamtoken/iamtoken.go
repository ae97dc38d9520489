// Package iamtoken mints IAM identity tokens for the Bedrock Entitlement
// Gateway: bearer tokens that prove, through AWS STS, which IAM principal a
// caller is, so that an application inside AWS calls the gateway with nothing
// but its usual AWS credentials (role, user, SSO, IRSA, Pod Identity...).
//
// # Token format
//
// A token is the prefix "bgw-iam-v1." followed by the unpadded base64url
// encoding (RFC 4648 §5, no '=') of a SigV4-presigned STS GetCallerIdentity URL:
//
//	https://<sts-host>/?Action=GetCallerIdentity&Version=2011-06-15
//	  &X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=<akid>/<date>/<region>/sts/aws4_request
//	  &X-Amz-Date=<yyyymmddThhmmssZ>&X-Amz-Expires=<1..900>
//	  &X-Amz-SignedHeaders=host;x-bedrock-gateway-id&X-Amz-Signature=<hex>
//	  [&X-Amz-Security-Token=<session token>]
//
// The request is signed for service "sts" with the header
// "x-bedrock-gateway-id: <gateway id>" among the signed headers. That header
// is the token's audience: the gateway sends it when it executes the presigned
// request, so a token minted for one gateway fails on another, and is useless
// to any other service that accepts GetCallerIdentity tokens (they would not
// send the header). X-Amz-Expires is required: STS honours a presigned
// GetCallerIdentity for 15 minutes whatever it says, so the gateway enforces
// it itself. Any client that can presign a SigV4 request can mint a token;
// this package is the Go implementation.
//
// # Use with the Bedrock Runtime client
//
// A token is sent as a bearer token. For a long-running application, give the
// client a [TokenProvider], which re-mints before the token expires, and
// prefer bearer authentication (otherwise a client that also has AWS
// credentials signs SigV4 instead):
//
//	cfg, err := config.LoadDefaultConfig(ctx)
//	...
//	tp := iamtoken.NewTokenProvider(cfg, iamtoken.Options{GatewayID: "bgw-o-abc123def4"})
//	client := bedrockruntime.NewFromConfig(cfg, func(o *bedrockruntime.Options) {
//		o.BaseEndpoint = aws.String("https://gateway.example.com")
//		o.BearerAuthTokenProvider = tp
//		o.AuthSchemePreference = []string{"httpBearerAuth"}
//	})
//
// The Go SDK sends bearer tokens only over HTTPS. For a one-off token (a
// shell's AWS_BEARER_TOKEN_BEDROCK), call [Mint].
package iamtoken

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go/auth/bearer"
)

// Public constants of the token format.
const (
	// Prefix starts every token.
	Prefix = "bgw-iam-v1."
	// GatewayIDHeader is the signed header carrying the gateway id.
	GatewayIDHeader = "x-bedrock-gateway-id"
	// MaxExpires is the longest validity a token may claim (STS's own limit
	// for a presigned GetCallerIdentity).
	MaxExpires = 900 * time.Second
	// DefaultExpires is the validity of a token when Options.Expires is zero.
	DefaultExpires = MaxExpires
)

// emptyPayloadHash is the SHA-256 of an empty body: a GET has none.
const emptyPayloadHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// Options configure minting.
type Options struct {
	// GatewayID is the id of the gateway the token is for (its audience).
	// Required: a member learns it from the gateway's operator (the gateway logs
	// it at start and shows it in /readyz; by default "bgw-" + the organization id).
	GatewayID string
	// Region is the STS region to sign for; default the aws.Config's region.
	Region string
	// STSEndpoint overrides the STS endpoint (a VPC endpoint, a simulator):
	// an origin, scheme, host and optional port, no path, for example
	// "https://sts.eu-west-1.amazonaws.com". The gateway accepts only AWS STS
	// hosts and exactly the origin of its own --sts-endpoint.
	STSEndpoint string
	// UseFIPS selects the FIPS STS endpoint of Region (ignored with STSEndpoint).
	UseFIPS bool
	// Expires is how long the token is valid, 1s to 15m; default 15m.
	// Whole seconds: it is written in seconds into X-Amz-Expires.
	Expires time.Duration
	// Now is the clock; default time.Now. For tests.
	Now func() time.Time
}

func (o Options) now() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}

func (o Options) expires() (time.Duration, error) {
	switch {
	case o.Expires == 0:
		return DefaultExpires, nil
	case o.Expires < time.Second || o.Expires > MaxExpires:
		return 0, fmt.Errorf("expires %v: must be between 1s and %v", o.Expires, MaxExpires)
	}
	return o.Expires.Truncate(time.Second), nil
}

// Mint returns a fresh token signed with cfg's credentials.
func Mint(ctx context.Context, cfg aws.Config, opts Options) (string, error) {
	tok, _, err := mint(ctx, cfg, opts)
	return tok, err
}

// mint returns the token and when it expires.
func mint(ctx context.Context, cfg aws.Config, opts Options) (string, time.Time, error) {
	if opts.GatewayID == "" {
		return "", time.Time{}, errors.New("minting IAM token: no gateway id")
	}
	if strings.ContainsAny(opts.GatewayID, "\r\n") {
		return "", time.Time{}, errors.New("minting IAM token: invalid gateway id")
	}
	expires, err := opts.expires()
	if err != nil {
		return "", time.Time{}, fmt.Errorf("minting IAM token: %w", err)
	}
	region := opts.Region
	if region == "" {
		region = cfg.Region
	}
	if region == "" {
		return "", time.Time{}, errors.New("minting IAM token: no region (set one in the AWS config or Options.Region)")
	}
	endpoint, err := stsEndpoint(ctx, region, opts)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("minting IAM token: %w", err)
	}
	if cfg.Credentials == nil {
		return "", time.Time{}, errors.New("minting IAM token: no AWS credentials")
	}
	creds, err := cfg.Credentials.Retrieve(ctx)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("minting IAM token: retrieving AWS credentials: %w", err)
	}

	u, err := url.Parse(endpoint)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("minting IAM token: STS endpoint: %w", err)
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		// The gateway accepts only the root of an origin.
		return "", time.Time{}, fmt.Errorf("minting IAM token: STS endpoint %q: want an http(s) origin", endpoint)
	}
	u.Path = "/"
	u.RawQuery = url.Values{
		"Action":        {"GetCallerIdentity"},
		"Version":       {"2011-06-15"},
		"X-Amz-Expires": {strconv.Itoa(int(expires / time.Second))},
	}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("minting IAM token: %w", err)
	}
	req.Header.Set(GatewayIDHeader, opts.GatewayID)

	signingRegion := region
	if region == "aws-global" {
		// The pseudo-region of the global endpoint sts.amazonaws.com, which
		// verifies signatures scoped to us-east-1.
		signingRegion = "us-east-1"
	}
	signedAt := opts.now().UTC().Truncate(time.Second)
	signed, _, err := v4.NewSigner().PresignHTTP(ctx, creds, req, emptyPayloadHash, "sts", signingRegion, signedAt)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("minting IAM token: presigning: %w", err)
	}
	return Prefix + base64.RawURLEncoding.EncodeToString([]byte(signed)), signedAt.Add(expires), nil
}

// stsEndpoint is opts.STSEndpoint, or the regional STS endpoint as the STS
// client resolves it (partition-aware: China, GovCloud, FIPS).
func stsEndpoint(ctx context.Context, region string, opts Options) (string, error) {
	if opts.STSEndpoint != "" {
		return opts.STSEndpoint, nil
	}
	ep, err := sts.NewDefaultEndpointResolverV2().ResolveEndpoint(ctx, sts.EndpointParameters{
		Region:  aws.String(region),
		UseFIPS: aws.Bool(opts.UseFIPS),
	})
	if err != nil {
		return "", fmt.Errorf("resolving the STS endpoint of %q: %w", region, err)
	}
	return ep.URI.String(), nil
}

// DefaultRefreshBefore is how long before its expiry a TokenProvider mints a
// new token: enough for a request's round trip and clock skew.
const DefaultRefreshBefore = time.Minute

// TokenProvider is a bearer.TokenProvider that mints tokens and re-mints
// them before they expire. Set it as a Bedrock Runtime client's
// Options.BearerAuthTokenProvider (see the package doc). It is safe for
// concurrent use; concurrent callers share one minting.
type TokenProvider struct {
	cfg  aws.Config
	opts Options

	mu      sync.Mutex
	token   string
	expires time.Time
}

var _ bearer.TokenProvider = (*TokenProvider)(nil)

// NewTokenProvider returns a provider minting with cfg's credentials. The
// credentials are retrieved at each minting, so the provider follows their
// own refresh (role sessions, SSO).
func NewTokenProvider(cfg aws.Config, opts Options) *TokenProvider {
	return &TokenProvider{cfg: cfg, opts: opts}
}

// RetrieveBearerToken returns the cached token, or a new one when less than
// DefaultRefreshBefore (or a fifth of the token's validity, when that is
// shorter) of its validity remains.
func (p *TokenProvider) RetrieveBearerToken(ctx context.Context) (bearer.Token, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.opts.now()
	if p.token != "" && now.Before(p.expires.Add(-p.margin())) {
		return bearer.Token{Value: p.token, CanExpire: true, Expires: p.expires}, nil
	}
	tok, exp, err := mint(ctx, p.cfg, p.opts)
	if err != nil {
		return bearer.Token{}, err
	}
	p.token, p.expires = tok, exp
	return bearer.Token{Value: tok, CanExpire: true, Expires: exp}, nil
}

// margin is the refresh margin, capped for very short tokens so that a
// token is not re-minted at every call.
func (p *TokenProvider) margin() time.Duration {
	exp, err := p.opts.expires()
	if err != nil {
		return DefaultRefreshBefore // minting fails anyway
	}
	return min(DefaultRefreshBefore, exp/5)
}
