package authn

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// SigV4 verification for any service, from an Authorization header or a
// presigned query (X-Amz-Signature). The Verifier is Bedrock's hot path;
// this is for the other services the project speaks or checks (the
// simulator's STS, IAM identity tokens), where clarity beats allocations.

// Errors of ParseSigV4 and SigV4Request.CheckTime; callers map them to their
// service's error shapes. The wrapped text says what is wrong, in AWS's words.
var (
	ErrSigV4Missing     = errors.New("request is missing authentication token")
	ErrSigV4Malformed   = errors.New("malformed SigV4 signature")
	ErrSigV4Expired     = errors.New("signature expired")
	ErrSigV4NotYetValid = errors.New("signature not yet current")
)

// MaxPresignExpires is the largest X-Amz-Expires SigV4 allows (7 days).
const MaxPresignExpires = 7 * 24 * time.Hour

// SigV4Request is a parsed SigV4 signature of a request.
type SigV4Request struct {
	AccessKeyID string
	Date        string // YYYYMMDD of the credential scope
	Region      string
	Service     string
	// SecurityToken is X-Amz-Security-Token (query when presigned, else
	// header); empty when none. Never log it.
	SecurityToken string
	AmzDate       string // X-Amz-Date, ISO 8601 basic
	SignedAt      time.Time
	Presigned     bool
	// Expires is X-Amz-Expires of a presigned request; 0 when absent (the Go
	// SDK's PresignHTTP leaves it out).
	Expires time.Duration

	a authHeader
}

// ParseSigV4 parses the SigV4 signature of r: the Authorization header, or
// else the X-Amz-* query parameters of a presigned request. It checks the
// syntax and that the date of the scope is the signing date; CheckTime and
// Verify do the rest.
func ParseSigV4(r *http.Request) (*SigV4Request, error) {
	_, rawQuery := rawTarget(r)
	auth := r.Header.Values("Authorization")
	presigned := strings.Contains(rawQuery, "X-Amz-Signature=") || strings.Contains(rawQuery, "X-Amz-Algorithm=")
	switch {
	case len(auth) > 1:
		return nil, fmt.Errorf("%w: only one Authorization header is allowed", ErrSigV4Malformed)
	case len(auth) == 1 && presigned:
		return nil, fmt.Errorf("%w: only one auth mechanism allowed; only the X-Amz-Algorithm query parameter or the Authorization header should be specified", ErrSigV4Malformed)
	case len(auth) == 1:
		return parseHeaderSigV4(r, auth[0])
	case presigned:
		return parsePresignedQuery(rawQuery)
	}
	return nil, ErrSigV4Missing
}

func parseHeaderSigV4(r *http.Request, header string) (*SigV4Request, error) {
	a, berr := parseAuthHeader(header)
	if berr != nil {
		return nil, fmt.Errorf("%w: %s", ErrSigV4Malformed, berr.Message)
	}
	amzDate, signedAt, berr := requestDate(r)
	if berr != nil {
		return nil, fmt.Errorf("%w: %s", ErrSigV4Malformed, berr.Message)
	}
	s := &SigV4Request{AccessKeyID: a.accessKeyID, Date: a.date, Region: a.region, Service: a.service,
		SecurityToken: r.Header.Get("X-Amz-Security-Token"), AmzDate: amzDate, SignedAt: signedAt, a: a}
	return s, s.checkScope()
}

// parsePresignedQuery reads the X-Amz-* parameters of a presigned query: each
// required one exactly once, no duplicate of any of them.
func parsePresignedQuery(rawQuery string) (*SigV4Request, error) {
	values, err := url.ParseQuery(rawQuery)
	if err != nil {
		return nil, fmt.Errorf("%w: the query does not parse", ErrSigV4Malformed)
	}
	one := func(name string, required bool) (string, error) {
		vs := values[name]
		switch {
		case len(vs) > 1:
			return "", fmt.Errorf("%w: duplicate query parameter %s", ErrSigV4Malformed, name)
		case len(vs) == 0 && required:
			return "", fmt.Errorf("%w: query parameter %s is required", ErrSigV4Malformed, name)
		case len(vs) == 0:
			return "", nil
		}
		return vs[0], nil
	}
	var p [7]string
	for i, f := range []struct {
		name     string
		required bool
	}{
		{"X-Amz-Algorithm", true}, {"X-Amz-Credential", true}, {"X-Amz-Date", true},
		{"X-Amz-SignedHeaders", true}, {"X-Amz-Signature", true},
		{"X-Amz-Expires", false}, {"X-Amz-Security-Token", false},
	} {
		if p[i], err = one(f.name, f.required); err != nil {
			return nil, err
		}
	}
	alg, cred, amzDate, signed, sig, expires, token := p[0], p[1], p[2], p[3], p[4], p[5], p[6]
	if alg != sigV4Algorithm {
		return nil, fmt.Errorf("%w: X-Amz-Algorithm only supports %q", ErrSigV4Malformed, sigV4Algorithm)
	}
	var a authHeader
	if berr := parseCredential(cred, &a); berr != nil {
		return nil, fmt.Errorf("%w: %s", ErrSigV4Malformed, berr.Message)
	}
	if !validSignedHeaders(signed) {
		return nil, fmt.Errorf("%w: malformed X-Amz-SignedHeaders", ErrSigV4Malformed)
	}
	if len(sig) != 64 || !isHex(sig) {
		return nil, fmt.Errorf("%w: malformed X-Amz-Signature", ErrSigV4Malformed)
	}
	a.signedHeaders, a.signature = signed, sig
	signedAt, ok := parseAmzDate(amzDate)
	if !ok {
		return nil, fmt.Errorf("%w: X-Amz-Date must be in ISO 8601 basic format", ErrSigV4Malformed)
	}
	s := &SigV4Request{AccessKeyID: a.accessKeyID, Date: a.date, Region: a.region, Service: a.service,
		SecurityToken: token, AmzDate: amzDate, SignedAt: signedAt, Presigned: true, a: a}
	if expires != "" {
		n, err := strconv.Atoi(expires)
		if err != nil || n < 1 || !isDigits(expires) || time.Duration(n)*time.Second > MaxPresignExpires {
			return nil, fmt.Errorf("%w: X-Amz-Expires must be a number of seconds from 1 to 604800", ErrSigV4Malformed)
		}
		s.Expires = time.Duration(n) * time.Second
	}
	return s, s.checkScope()
}

func (s *SigV4Request) checkScope() error {
	if s.a.terminal != "aws4_request" {
		return fmt.Errorf("%w: credential should be scoped with a valid terminator: 'aws4_request'", ErrSigV4Malformed)
	}
	if !signsHost(s.a.signedHeaders) {
		return fmt.Errorf("%w: 'Host' must be a signed header", ErrSigV4Malformed)
	}
	if s.a.date != s.AmzDate[:8] {
		return fmt.Errorf("%w: date in credential scope does not match YYYYMMDD of X-Amz-Date", ErrSigV4Malformed)
	}
	return nil
}

// CheckTime checks the signing time against now: a header signature must be
// within maxSkew of now; a presigned one must not be dated more than maxSkew
// ahead and is valid for its X-Amz-Expires capped at maxAge (maxAge when it
// has none).
func (s *SigV4Request) CheckTime(now time.Time, maxSkew, maxAge time.Duration) error {
	now = now.UTC()
	if s.SignedAt.After(now.Add(maxSkew)) {
		return fmt.Errorf("%w: %s is still later than %s (%s + %s)", ErrSigV4NotYetValid,
			s.AmzDate, now.Add(maxSkew).Format(amzDateFormat), now.Format(amzDateFormat), skewText(maxSkew))
	}
	life := maxSkew
	if s.Presigned {
		life = maxAge
		if s.Expires > 0 && s.Expires < life {
			life = s.Expires
		}
	}
	if now.After(s.SignedAt.Add(life)) {
		return fmt.Errorf("%w: %s is now earlier than %s (%s - %s)", ErrSigV4Expired,
			s.AmzDate, now.Add(-life).Format(amzDateFormat), now.Format(amzDateFormat), skewText(life))
	}
	return nil
}

// Verify reports whether the signature matches r signed with secret.
// payloadHash is the lowercase hex SHA-256 of the body as received; an
// X-Amz-Content-Sha256 header of UNSIGNED-PAYLOAD or of that digest is used
// as the client signed it. The comparison is constant-time.
func (s *SigV4Request) Verify(r *http.Request, secret, payloadHash string) bool {
	path, query := rawTarget(r)
	if s.Presigned {
		query = dropQueryParam(query, "X-Amz-Signature")
	}
	if h := r.Header.Values("X-Amz-Content-Sha256"); len(h) == 1 && (h[0] == UnsignedPayload || strings.EqualFold(h[0], payloadHash)) {
		payloadHash = h[0]
	}
	buf := make([]byte, 0, 512)
	buf = append(buf, r.Method...)
	buf = append(buf, '\n')
	buf = appendCanonicalURI(buf, path)
	buf = append(buf, '\n')
	buf, ok := appendCanonicalQuery(buf, query)
	if !ok {
		return false
	}
	buf = append(buf, '\n')
	if buf, ok = appendCanonicalHeaders(buf, r, s.a.signedHeaders); !ok {
		return false
	}
	buf = append(buf, '\n')
	buf = append(buf, s.a.signedHeaders...)
	buf = append(buf, '\n')
	buf = append(buf, payloadHash...)
	crHash := sha256.Sum256(buf)

	sts := sigV4Algorithm + "\n" + s.AmzDate + "\n" + s.a.scope + "\n" + hex.EncodeToString(crHash[:])
	key := deriveSigningKey(secret, s.Date, s.Region, s.Service)
	m := hmac.New(sha256.New, key[:])
	m.Write([]byte(sts))
	var got [32]byte
	if !decodeHex(got[:], s.a.signature) {
		return false
	}
	return hmac.Equal(m.Sum(nil), got[:])
}

// dropQueryParam removes every name=value pair whose decoded name is name,
// keeping the rest as received.
func dropQueryParam(rawQuery, name string) string {
	parts := strings.Split(rawQuery, "&")
	kept := parts[:0]
	for _, p := range parts {
		k, _, _ := strings.Cut(p, "=")
		if dk, err := url.QueryUnescape(k); err == nil && dk == name {
			continue
		}
		kept = append(kept, p)
	}
	return strings.Join(kept, "&")
}
