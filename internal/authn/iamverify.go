package authn

import (
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/bedrock-gateway/gateway/internal/bedrock"
	"github.com/bedrock-gateway/gateway/internal/state"
	"github.com/bedrock-gateway/gateway/pkg/iamtoken"
)

// KindIAM is the Credential.Kind of a caller authenticated by an IAM identity
// token: Account is the account STS named, Label the principal's ARN.
const KindIAM = "iam"

// DefaultGatewayID is the gateway id used when --gateway-id is not set: it
// derives from the organization id, so every replica of one gateway agrees.
// Empty without an organization id: no token is then accepted.
func DefaultGatewayID(orgID string) string {
	if orgID == "" {
		return ""
	}
	return "bgw-" + orgID
}

// Defaults of IAMVerifierOptions.
const (
	DefaultIAMCacheTTL    = 5 * time.Minute
	defaultIAMRefusalTTL  = 10 * time.Second
	defaultIAMMaxEntries  = 100_000
	defaultIAMMaxInflight = 64
	defaultSTSTimeout     = 5 * time.Second
	// maxSTSResponse bounds what is read of an STS answer: a
	// GetCallerIdentity response is well under 1 KB.
	maxSTSResponse = 64 << 10
)

// IAMVerifierOptions configure an IAMVerifier.
type IAMVerifierOptions struct {
	// STSEndpoint is the origin of --sts-endpoint, accepted besides the AWS
	// STS hosts (see IAMTokenOptions.AllowedOrigin). Optional.
	STSEndpoint string
	// CacheTTL bounds how long a verified identity is reused; never beyond
	// the token's own expiry. Default 5m.
	CacheTTL time.Duration
	// RefusalTTL is how long an STS refusal is remembered; default 10s.
	RefusalTTL time.Duration
	// MaxEntries bounds the cache (least recently used evicted); default 100,000.
	MaxEntries int
	// MaxInflight bounds concurrent STS calls; beyond it a token that is
	// not cached gets ServiceUnavailableException. Default 64.
	MaxInflight int
	// VerifyRate bounds STS verifications per second over all sources
	// (cached answers cost none); default DefaultIAMVerifyRate. Beyond it a
	// token that is not cached gets ThrottlingException.
	VerifyRate float64
	// VerifyRatePerSource bounds them per source address; default
	// DefaultIAMVerifyRatePerSource; negative: no per-source bound (behind a
	// load balancer that hides client addresses, every caller is one source).
	VerifyRatePerSource float64
	// MaxInflightPerSource bounds concurrent STS calls per source address;
	// default 8.
	MaxInflightPerSource int
	// Timeout bounds one STS call; default 5s.
	Timeout time.Duration
	// Transport carries STS calls; default a clone of http.DefaultTransport.
	Transport http.RoundTripper
	Now       func() time.Time // default time.Now
	Logger    *slog.Logger     // default discards
}

// IAMVerifier authenticates IAM identity tokens: it checks their shape
// offline (ParseIAMToken), then executes the presigned GetCallerIdentity
// against STS, which checks the signature and names the caller. Answers are
// cached, so a busy caller costs STS one call per token (and at most one per
// CacheTTL). It is safe for concurrent use.
type IAMVerifier struct {
	opts   IAMVerifierOptions
	client *http.Client
	sem    chan struct{} // STS calls in flight
	budget *verifyBudget

	mu      sync.Mutex
	entries map[[32]byte]*list.Element // of *iamEntry
	lru     list.List                  // front: most recently used
	flights map[[32]byte]*iamFlight
}

type iamEntry struct {
	key     [32]byte
	cred    *Credential
	err     *bedrock.Error
	expires time.Time
}

type iamFlight struct {
	done chan struct{}
	cred *Credential
	err  *bedrock.Error
}

// NewIAMVerifier returns an IAMVerifier.
func NewIAMVerifier(opts IAMVerifierOptions) *IAMVerifier {
	if opts.CacheTTL <= 0 {
		opts.CacheTTL = DefaultIAMCacheTTL
	}
	if opts.RefusalTTL <= 0 {
		opts.RefusalTTL = defaultIAMRefusalTTL
	}
	if opts.MaxEntries <= 0 {
		opts.MaxEntries = defaultIAMMaxEntries
	}
	if opts.MaxInflight <= 0 {
		opts.MaxInflight = defaultIAMMaxInflight
	}
	if opts.Timeout <= 0 {
		opts.Timeout = defaultSTSTimeout
	}
	if opts.VerifyRate <= 0 {
		opts.VerifyRate = DefaultIAMVerifyRate
	}
	if opts.VerifyRatePerSource == 0 {
		opts.VerifyRatePerSource = DefaultIAMVerifyRatePerSource
	}
	if opts.MaxInflightPerSource <= 0 {
		opts.MaxInflightPerSource = defaultIAMInflightPerSource
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	tr := opts.Transport
	if tr == nil {
		tr = http.DefaultTransport.(*http.Transport).Clone()
	}
	return &IAMVerifier{
		opts: opts,
		client: &http.Client{
			Transport: tr,
			Timeout:   opts.Timeout,
			// Never follow a redirect: the token's origin was checked, a
			// Location header was not (SSRF).
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		sem:     make(chan struct{}, opts.MaxInflight),
		budget:  newVerifyBudget(opts.VerifyRate, opts.VerifyRatePerSource, opts.MaxInflightPerSource, opts.Now),
		entries: make(map[[32]byte]*list.Element),
		flights: make(map[[32]byte]*iamFlight),
	}
}

// IsIAMToken reports whether a bearer token is an IAM identity token.
func IsIAMToken(token string) bool { return strings.HasPrefix(token, iamtoken.Prefix) }

// Begin authenticates r in Verifier.Begin's place when it carries an IAM
// identity token as its bearer token: handled is false (and p untouched) for
// any other request. gatewayID is this gateway's id, the tokens' audience.
func (v *IAMVerifier) Begin(ctx context.Context, r *http.Request, gatewayID string, p *Pending) (handled bool, err error) {
	auth := r.Header["Authorization"]
	if len(auth) != 1 {
		return false, nil
	}
	token, ok := cutBearer(auth[0])
	if !ok || !IsIAMToken(token) {
		return false, nil
	}
	c, err := v.VerifyFrom(ctx, token, gatewayID, r.RemoteAddr)
	if err != nil {
		return true, err
	}
	*p = Pending{cred: c, bearer: true}
	return true, nil
}

// Verify returns the credential of an IAM identity token. Errors are
// *bedrock.Error: UnrecognizedClientException for a token that is not valid
// (malformed, expired, refused by STS), ServiceUnavailableException when STS
// cannot answer now (not a denial: the client retries).
func (v *IAMVerifier) Verify(ctx context.Context, token, gatewayID string) (*Credential, error) {
	return v.VerifyFrom(ctx, token, gatewayID, "")
}

// VerifyFrom is Verify for a token sent from source (a RemoteAddr): a token
// that is not cached also spends the source's verification budget
// (VerifyRatePerSource, MaxInflightPerSource), and its answer is
// ThrottlingException when that is spent.
func (v *IAMVerifier) VerifyFrom(ctx context.Context, token, gatewayID, source string) (*Credential, error) {
	if gatewayID == "" {
		return nil, bedrock.Unavailable("The gateway has no gateway id yet (no organization loaded).")
	}
	// The key covers the audience too: a token is valid for one gateway id.
	h := sha256.New()
	h.Write([]byte(gatewayID))
	h.Write([]byte{0})
	h.Write([]byte(token))
	var key [32]byte
	h.Sum(key[:0])

	now := v.opts.Now()
	v.mu.Lock()
	if el, ok := v.entries[key]; ok {
		e := el.Value.(*iamEntry)
		if now.Before(e.expires) {
			v.lru.MoveToFront(el)
			v.mu.Unlock()
			return e.result()
		}
		v.lru.Remove(el)
		delete(v.entries, key)
	}
	f, joined := v.flights[key]
	if !joined {
		f = &iamFlight{done: make(chan struct{})}
		v.flights[key] = f
	}
	v.mu.Unlock()

	if !joined {
		v.fly(ctx, key, token, gatewayID, source, f)
	}
	select {
	case <-f.done:
	case <-ctx.Done():
		return nil, bedrock.Unavailable("The request was cancelled while its IAM identity was verified.")
	}
	if f.err != nil {
		return nil, f.err
	}
	return f.cred, nil
}

func (e *iamEntry) result() (*Credential, error) {
	if e.err != nil {
		return nil, e.err
	}
	return e.cred, nil
}

// fly verifies one token for every caller waiting on f, and caches the
// answer unless it is STS being unavailable.
func (v *IAMVerifier) fly(ctx context.Context, key [32]byte, token, gatewayID, source string, f *iamFlight) {
	cred, expires, err, fromSTS := v.verify(ctx, token, gatewayID, source)
	f.cred, f.err = cred, err
	v.mu.Lock()
	delete(v.flights, key)
	// Only STS's answers are cached: a malformed token is refused again
	// cheaply, and must not evict verified identities from the cache.
	if fromSTS {
		v.store(key, cred, err, expires)
	}
	v.mu.Unlock()
	close(f.done)
}

// store caches an answer; v.mu is held.
func (v *IAMVerifier) store(key [32]byte, cred *Credential, err *bedrock.Error, expires time.Time) {
	now := v.opts.Now()
	ttl := v.opts.CacheTTL
	if err != nil {
		ttl = v.opts.RefusalTTL
	}
	if until := now.Add(ttl); expires.IsZero() || until.Before(expires) {
		expires = until
	}
	if !now.Before(expires) {
		return
	}
	v.entries[key] = v.lru.PushFront(&iamEntry{key: key, cred: cred, err: err, expires: expires})
	for v.lru.Len() > v.opts.MaxEntries {
		old := v.lru.Back()
		v.lru.Remove(old)
		delete(v.entries, old.Value.(*iamEntry).key)
	}
}

// verify checks the token's shape, then asks STS. The expiry returned bounds
// how long the answer may be cached (the token's own expiry); fromSTS says the
// answer is STS's (an identity or a refusal), which may be cached.
func (v *IAMVerifier) verify(ctx context.Context, token, gatewayID, source string) (_ *Credential, _ time.Time, _ *bedrock.Error, fromSTS bool) {
	req, err := ParseIAMToken(token, IAMTokenOptions{GatewayID: gatewayID, AllowedOrigin: v.opts.STSEndpoint, Now: v.opts.Now})
	if err != nil {
		v.opts.Logger.Debug("IAM identity token refused", "reason", err.Error())
		var be *bedrock.Error
		if errors.As(err, &be) {
			return nil, time.Time{}, be, false
		}
		return nil, time.Time{}, errInvalidToken(), false
	}
	// Bound what unverified tokens cost: a flood of distinct tokens gets
	// throttled (per source and overall) or 503s, not an unbounded number of
	// STS calls.
	release, berr := v.budget.acquire(source)
	if berr != nil {
		return nil, time.Time{}, berr, false
	}
	defer release()
	select {
	case v.sem <- struct{}{}:
		defer func() { <-v.sem }()
	default:
		return nil, time.Time{}, bedrock.Unavailable("Too many IAM identities are being verified at once. Please retry."), false
	}
	// Other callers may be waiting on this call: the first caller leaving
	// must not cancel it (the client's Timeout bounds it).
	id, err := v.callSTS(context.WithoutCancel(ctx), req)
	if err != nil {
		var be *bedrock.Error
		if errors.As(err, &be) {
			v.opts.Logger.Debug("IAM identity refused by STS", "access_key_id", req.AccessKeyID, "reason", err.Error())
			return nil, req.Expires, be, true
		}
		v.opts.Logger.Warn("STS unavailable for IAM identity verification", "error", err)
		return nil, time.Time{}, bedrock.Unavailable("The gateway cannot verify IAM identities now (STS unavailable). Please retry."), false
	}
	return &Credential{
		ID:        id.UserID,
		Account:   id.Account,
		Label:     id.Arn,
		Kind:      KindIAM,
		ExpiresAt: req.Expires,
		Principal: state.CanonicalPrincipal(id.Arn),
	}, req.Expires, nil, true
}

type stsIdentity struct {
	Arn     string `xml:"GetCallerIdentityResult>Arn"`
	UserID  string `xml:"GetCallerIdentityResult>UserId"`
	Account string `xml:"GetCallerIdentityResult>Account"`
}

type stsErrorBody struct {
	Code string `xml:"Error>Code"`
}

var (
	stsAccountRE = regexp.MustCompile(`^[0-9]{12}$`)
	stsArnRE     = regexp.MustCompile(`^arn:aws[a-z-]*:(iam|sts)::[0-9]{12}:[!-~]+$`)
)

// callSTS GETs the presigned URL. A refusal by STS (4xx other than
// throttling) is returned as a *bedrock.Error; any other error means STS
// could not answer.
func (v *IAMVerifier) callSTS(ctx context.Context, t *IAMTokenRequest) (*stsIdentity, error) {
	hr, err := http.NewRequestWithContext(ctx, http.MethodGet, t.URL, nil)
	if err != nil {
		return nil, fmt.Errorf("building STS request: %w", err)
	}
	for k, vs := range t.Header {
		hr.Header[k] = vs
	}
	resp, err := v.client.Do(hr)
	if err != nil {
		return nil, fmt.Errorf("calling STS: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxSTSResponse))
	if err != nil {
		return nil, fmt.Errorf("reading STS answer: %w", err)
	}
	switch {
	case resp.StatusCode == http.StatusOK:
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return nil, fmt.Errorf("STS answered %d", resp.StatusCode)
	case resp.StatusCode >= 400 && resp.StatusCode < 500:
		var e stsErrorBody
		_ = xml.Unmarshal(body, &e)
		if e.Code == "Throttling" || e.Code == "RequestLimitExceeded" {
			return nil, fmt.Errorf("STS throttled: %s", e.Code)
		}
		if strings.Contains(e.Code, "Expired") {
			return nil, &stsRefusal{code: e.Code, be: errExpiredToken()}
		}
		return nil, &stsRefusal{code: truncate(e.Code, 64), be: errInvalidToken()}
	default:
		// A redirect (not followed) or anything else: not an STS answer.
		return nil, fmt.Errorf("STS answered %d", resp.StatusCode)
	}
	var id stsIdentity
	if err := xml.Unmarshal(body, &id); err != nil {
		return nil, fmt.Errorf("parsing STS answer: %w", err)
	}
	if !stsAccountRE.MatchString(id.Account) || !stsArnRE.MatchString(id.Arn) || len(id.Arn) > 2048 || id.UserID == "" || len(id.UserID) > 256 {
		return nil, errors.New("STS answer lacks a valid Account, Arn or UserId")
	}
	return &id, nil
}

// stsRefusal is STS refusing the token: the client's fault, cached briefly.
type stsRefusal struct {
	code string
	be   *bedrock.Error
}

func (e *stsRefusal) Error() string { return "STS refused: " + e.code }

func (e *stsRefusal) As(target any) bool {
	if p, ok := target.(**bedrock.Error); ok {
		*p = e.be
		return true
	}
	return false
}
