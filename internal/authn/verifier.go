package authn

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bedrock-gateway/gateway/internal/bedrock"
)

// Literal x-amz-content-sha256 values that stand for the payload hash in the
// canonical request instead of the body's digest.
const (
	// UnsignedPayload: the client chose not to sign the body.
	UnsignedPayload = "UNSIGNED-PAYLOAD"
	// StreamingEvents: the body is a chain of signed event-stream envelopes
	// (InvokeModelWithBidirectionalStream); see ChunkVerifier.
	StreamingEvents = "STREAMING-AWS4-HMAC-SHA256-EVENTS"
)

const (
	amzDateFormat   = "20060102T150405Z"
	defaultMaxSkew  = 5 * time.Minute
	keyCacheEntries = 8192
	maxPooledBuffer = 64 << 10
)

// Options configure a Verifier. The zero value is ready to use.
type Options struct {
	Now     func() time.Time // default time.Now
	MaxSkew time.Duration    // default 5 * time.Minute, AWS's own window
}

// Verifier authenticates requests. It is safe for concurrent use.
type Verifier struct {
	now     func() time.Time
	maxSkew time.Duration
	keys    *keyCache
	bufs    sync.Pool // *[]byte
}

// NewVerifier returns a Verifier.
func NewVerifier(opts Options) *Verifier {
	v := &Verifier{now: opts.Now, maxSkew: opts.MaxSkew, keys: newKeyCache(keyCacheEntries)}
	if v.now == nil {
		v.now = time.Now
	}
	if v.maxSkew <= 0 {
		v.maxSkew = defaultMaxSkew
	}
	v.bufs.New = func() any {
		b := make([]byte, 0, 1024)
		return &b
	}
	return v
}

// Result is an authenticated caller.
type Result struct {
	Credential *Credential
	// For SigV4: the request's signature (hex), its scope
	// ("20260101/us-east-1/bedrock/aws4_request"), X-Amz-Date value and the
	// derived signing key: what a bidirectional-stream proxy needs to verify
	// the caller's chunk-signature chain. SigningKey is shared: never modify it.
	Signature, Scope, AmzDate string
	SigningKey                []byte
	// PayloadHash is the payload hash the signature covers: the body's digest
	// given to Authenticate, or UnsignedPayload or StreamingEvents when the
	// client sent that literal in X-Amz-Content-Sha256. With either literal
	// the signature does not cover the body: the caller decides whether the
	// operation allows that (StreamingEvents only for the bidirectional
	// stream, whose envelopes ChunkVerifier checks). Empty for API keys.
	PayloadHash string
}

// Authenticate authenticates r with either SigV4 (Authorization:
// AWS4-HMAC-SHA256 ...) or a bearer API key (Authorization: Bearer <key>).
// payloadHash is the lowercase hex SHA-256 of the request body as received.
// It is Begin followed by Finish; a server that has not read the body yet
// calls them apart. Errors are *bedrock.Error, worded as AWS words them.
func (v *Verifier) Authenticate(r *http.Request, payloadHash string, creds Lookup) (*Result, error) {
	var p Pending
	if err := v.Begin(r, creds, &p); err != nil {
		return nil, err
	}
	return v.Finish(r, &p, payloadHash)
}

// Pending is a request whose credential passed every check that needs no
// body: Authorization parsed, the key found in the snapshot and not expired,
// the signing date inside the skew window. A bearer API key is then fully
// checked; a SigV4 signature, which covers the body, is left to Finish.
type Pending struct {
	cred    *Credential
	bearer  bool
	a       authHeader
	amzDate string
}

// Bearer reports whether the request carries an API key.
func (p *Pending) Bearer() bool { return p.bearer }

// Begin runs the checks that need only the request's headers, so that a
// request whose credential cannot be valid is refused before its body is
// read: no or malformed Authorization, an unknown, revoked or expired key, a
// signing date outside the window. It fills p for Finish.
func (v *Verifier) Begin(r *http.Request, creds Lookup, p *Pending) error {
	auth := r.Header["Authorization"]
	if len(auth) == 0 || auth[0] == "" {
		return bedrock.Unrecognized("Missing Authentication Token")
	}
	if len(auth) > 1 {
		return bedrock.BadSignature("Only one Authorization header is allowed.")
	}
	if key, ok := cutBearer(auth[0]); ok {
		c, err := v.authenticateBearer(key, creds)
		if err != nil {
			return err
		}
		*p = Pending{cred: c, bearer: true}
		return nil
	}
	if err := v.beginSigV4(r, auth[0], creds, p); err != nil {
		return err
	}
	return nil
}

// Finish completes what Begin started: for SigV4 it checks the signature over
// the request and payloadHash, the lowercase hex SHA-256 of the body as
// received (ignored when the client signed UNSIGNED-PAYLOAD or
// STREAMING-AWS4-HMAC-SHA256-EVENTS).
func (v *Verifier) Finish(r *http.Request, p *Pending, payloadHash string) (*Result, error) {
	switch {
	case p.cred == nil:
		return nil, errInvalidToken() // Begin did not succeed
	case p.bearer:
		return &Result{Credential: p.cred}, nil
	}
	res, err := v.finishSigV4(r, p, payloadHash)
	if err != nil {
		return nil, err
	}
	return res, nil
}

// IsBearer reports whether an Authorization value carries a bearer token.
func IsBearer(authorization string) bool {
	_, ok := cutBearer(authorization)
	return ok
}

// cutBearer returns the token of a "Bearer <token>" value (scheme matched
// case-insensitively, as RFC 9110 says).
func cutBearer(v string) (string, bool) {
	const scheme = "Bearer "
	if len(v) < len(scheme) || !strings.EqualFold(v[:len(scheme)], scheme) {
		return "", false
	}
	return strings.TrimSpace(v[len(scheme):]), true
}

// authenticateBearer checks an API key fully: the key is its own secret, so
// nothing about it waits for the body.
func (v *Verifier) authenticateBearer(key string, creds Lookup) (*Credential, *bedrock.Error) {
	if key == "" {
		return nil, errInvalidToken()
	}
	c, ok := creds.ByAPIKeyHash(HashAPIKey(key))
	if !ok || c == nil || c.Kind != KindAPIKey {
		return nil, errInvalidToken()
	}
	if expired(c, v.now()) {
		return nil, errExpiredToken()
	}
	return c, nil
}

func (v *Verifier) beginSigV4(r *http.Request, header string, creds Lookup, p *Pending) *bedrock.Error {
	a, err := parseAuthHeader(header)
	if err != nil {
		return err
	}
	if a.service != signingService {
		return bedrock.BadSignature("Credential should be scoped to correct service: '" + signingService + "'. ")
	}
	if a.terminal != "aws4_request" {
		return bedrock.BadSignature("Credential should be scoped with a valid terminator: 'aws4_request', not '" + truncate(a.terminal, 32) + "'. ")
	}
	if !signsHost(a.signedHeaders) {
		return bedrock.BadSignature("'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.")
	}
	amzDate, signedAt, err := requestDate(r)
	if err != nil {
		return err
	}
	if a.date != amzDate[:8] {
		return bedrock.BadSignature("Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '" +
			a.date + "' != '" + amzDate[:8] + "', from '" + amzDate + "'.")
	}
	now := v.now()
	if err := v.checkSkew(amzDate, signedAt, now); err != nil {
		return err
	}
	c, ok := creds.ByAccessKeyID(a.accessKeyID)
	// An expired key is refused like an unknown one: the signature cannot be
	// checked before the body is read, and without it nobody may learn a
	// key's state.
	if !ok || c == nil || c.Kind != KindSigV4 || c.Secret == "" || expired(c, now) {
		return errInvalidToken()
	}
	*p = Pending{cred: c, a: a, amzDate: amzDate}
	return nil
}

func (v *Verifier) finishSigV4(r *http.Request, p *Pending, payloadHash string) (*Result, *bedrock.Error) {
	a, c := &p.a, p.cred
	canonicalHash := payloadHash
	if vals := r.Header["X-Amz-Content-Sha256"]; len(vals) > 0 {
		switch h := vals[0]; {
		case h == UnsignedPayload || h == StreamingEvents:
			canonicalHash = h
		case len(vals) == 1 && strings.EqualFold(h, payloadHash):
			canonicalHash = h // as the client signed it
		default:
			return nil, bedrock.BadSignature("The provided 'x-amz-content-sha256' header does not match what was computed.")
		}
	}
	key := v.keys.get(a.accessKeyID, c.Secret, a.date, a.region, signingService)
	if !v.signatureMatches(r, a, p.amzDate, canonicalHash, key) {
		return nil, errSignatureMismatch()
	}
	return &Result{
		Credential:  c,
		Signature:   a.signature,
		Scope:       a.scope,
		AmzDate:     p.amzDate,
		SigningKey:  key,
		PayloadHash: canonicalHash,
	}, nil
}

// signatureMatches builds the canonical request and string to sign in a
// pooled buffer and compares signatures in constant time.
func (v *Verifier) signatureMatches(r *http.Request, a *authHeader, amzDate, payloadHash string, key []byte) bool {
	bp := v.bufs.Get().(*[]byte)
	defer func() {
		if cap(*bp) <= maxPooledBuffer {
			v.bufs.Put(bp)
		}
	}()
	buf := (*bp)[:0]

	path, query := rawTarget(r)
	buf = append(buf, r.Method...)
	buf = append(buf, '\n')
	buf = appendCanonicalURI(buf, path)
	buf = append(buf, '\n')
	buf, ok := appendCanonicalQuery(buf, query)
	if !ok {
		*bp = buf
		return false
	}
	buf = append(buf, '\n')
	buf, ok = appendCanonicalHeaders(buf, r, a.signedHeaders)
	if !ok {
		*bp = buf
		return false
	}
	buf = append(buf, '\n')
	buf = append(buf, a.signedHeaders...)
	buf = append(buf, '\n')
	buf = append(buf, payloadHash...)
	crHash := sha256.Sum256(buf)

	// The string to sign goes after the canonical request in the same buffer.
	start := len(buf)
	buf = append(buf, sigV4Algorithm+"\n"...)
	buf = append(buf, amzDate...)
	buf = append(buf, '\n')
	buf = append(buf, a.scope...)
	buf = append(buf, '\n')
	buf = hex.AppendEncode(buf, crHash[:])
	// hmacSHA256 needs scratch space: give it the buffer's spare capacity.
	buf = slices.Grow(buf, 64+len(buf)-start)
	want, _ := hmacSHA256(buf[len(buf):], key, buf[start:])
	*bp = buf[:0]

	var got [32]byte
	if !decodeHex(got[:], a.signature) {
		return false
	}
	return hmac.Equal(want[:], got[:])
}

// signsHost reports whether SignedHeaders includes host or :authority, as
// AWS requires: without it a signature could be replayed to another host.
func signsHost(signed string) bool {
	for signed != "" {
		var name string
		name, signed, _ = strings.Cut(signed, ";")
		if strings.EqualFold(name, "host") || strings.EqualFold(name, ":authority") {
			return true
		}
	}
	return false
}

// requestDate returns the signing time from X-Amz-Date, or from Date when
// there is no X-Amz-Date, in ISO 8601 basic format.
func requestDate(r *http.Request) (string, time.Time, *bedrock.Error) {
	if vals := r.Header["X-Amz-Date"]; len(vals) > 0 {
		t, ok := parseAmzDate(vals[0])
		if !ok {
			return "", time.Time{}, bedrock.BadSignature("Date must be in ISO-8601 'basic format'. Got '" +
				truncate(vals[0], 32) + "'. See http://en.wikipedia.org/wiki/ISO_8601")
		}
		return vals[0], t, nil
	}
	if vals := r.Header["Date"]; len(vals) > 0 {
		t, err := http.ParseTime(vals[0])
		if err != nil {
			return "", time.Time{}, bedrock.BadSignature("Date must be in RFC 1123 format. Got '" + truncate(vals[0], 40) + "'.")
		}
		t = t.UTC()
		return t.Format(amzDateFormat), t, nil
	}
	return "", time.Time{}, bedrock.BadSignature("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.")
}

// parseAmzDate parses YYYYMMDDTHHMMSSZ without allocating.
func parseAmzDate(s string) (time.Time, bool) {
	if len(s) != len(amzDateFormat) || s[8] != 'T' || s[15] != 'Z' || !isDigits(s[:8]) || !isDigits(s[9:15]) {
		return time.Time{}, false
	}
	n := func(i, j int) int {
		v := 0
		for _, c := range []byte(s[i:j]) {
			v = v*10 + int(c-'0')
		}
		return v
	}
	year, month, day := n(0, 4), n(4, 6), n(6, 8)
	hour, minute, sec := n(9, 11), n(11, 13), n(13, 15)
	t := time.Date(year, time.Month(month), day, hour, minute, sec, 0, time.UTC)
	// time.Date normalises out-of-range fields; a real date round-trips.
	if t.Year() != year || int(t.Month()) != month || t.Day() != day ||
		t.Hour() != hour || t.Minute() != minute || t.Second() != sec {
		return time.Time{}, false
	}
	return t, true
}

// checkSkew refuses requests signed more than MaxSkew away from now, with
// AWS's wording.
func (v *Verifier) checkSkew(amzDate string, signedAt, now time.Time) *bedrock.Error {
	now = now.UTC()
	switch {
	case signedAt.Before(now.Add(-v.maxSkew)):
		return bedrock.BadSignature("Signature expired: " + amzDate + " is now earlier than " +
			now.Add(-v.maxSkew).Format(amzDateFormat) + " (" + now.Format(amzDateFormat) + " - " + skewText(v.maxSkew) + ")")
	case signedAt.After(now.Add(v.maxSkew)):
		return bedrock.BadSignature("Signature not yet current: " + amzDate + " is still later than " +
			now.Add(v.maxSkew).Format(amzDateFormat) + " (" + now.Format(amzDateFormat) + " + " + skewText(v.maxSkew) + ")")
	}
	return nil
}

func skewText(d time.Duration) string {
	if d%time.Minute == 0 {
		return strconv.FormatInt(int64(d/time.Minute), 10) + " min."
	}
	return d.String() + "."
}

func expired(c *Credential, now time.Time) bool {
	return !c.ExpiresAt.IsZero() && !now.Before(c.ExpiresAt)
}

func errInvalidToken() *bedrock.Error {
	return bedrock.Unrecognized("The security token included in the request is invalid.")
}

func errExpiredToken() *bedrock.Error {
	return bedrock.Unrecognized("The security token included in the request is expired")
}

func errSignatureMismatch() *bedrock.Error {
	return bedrock.BadSignature("The request signature we calculated does not match the signature you provided. " +
		"Check your AWS Secret Access Key and signing method. Consult the service documentation for details.")
}

// decodeHex decodes len(dst)*2 hex digits of s into dst without allocating.
func decodeHex(dst []byte, s string) bool {
	if len(s) != 2*len(dst) {
		return false
	}
	for i := range dst {
		hi, ok1 := fromHexChar(s[2*i])
		lo, ok2 := fromHexChar(s[2*i+1])
		if !ok1 || !ok2 {
			return false
		}
		dst[i] = hi<<4 | lo
	}
	return true
}

func fromHexChar(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
