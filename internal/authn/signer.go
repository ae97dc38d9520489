package authn

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Signer signs requests with SigV4 (Authorization header) the way
// aws-sdk-go-v2's aws/signer/v4 Signer.SignHTTP does, byte for byte (a test
// compares the two), without its per-request allocations: the derived
// signing key is cached per (access key, secret, date, region, service) and
// the canonical request is built in a pooled buffer. It signs requests
// without a query string only (SignHTTP reports false for others; the
// caller then uses the SDK's signer), which are all of Bedrock Runtime's
// model calls. It is safe for concurrent use.
type Signer struct {
	keys *keyCache
	bufs sync.Pool // *[]byte
}

// signerKeyEntries bounds the signer's key cache: one hub key in a handful
// of regions, a new set each day.
const signerKeyEntries = 64

// NewSigner returns a Signer.
func NewSigner() *Signer {
	s := &Signer{keys: newKeyCache(signerKeyEntries)}
	s.bufs.New = func() any { b := make([]byte, 0, 2048); return &b }
	return s
}

// SigningCredentials are what a request is signed with.
type SigningCredentials struct {
	AccessKeyID, SecretAccessKey, SessionToken string
}

// sdkIgnoredHeaders are the headers the SDK never signs (its v4
// IgnoredHeaders rule), by canonical key.
var sdkIgnoredHeaders = [...]string{"Authorization", "User-Agent", "X-Amzn-Trace-Id", "Expect", "Transfer-Encoding"}

// SignHTTP sets X-Amz-Date (and X-Amz-Security-Token for temporary
// credentials) and Authorization on r, signing payloadHash (hex SHA-256 of
// the body, or a streaming marker) for service and region at t. It reports
// false, changing nothing, when r has a query string or a header key not in
// canonical form.
func (s *Signer) SignHTTP(creds SigningCredentials, r *http.Request, payloadHash, service, region string, t time.Time) bool {
	if r.URL.RawQuery != "" || r.URL.Opaque != "" || r.URL.ForceQuery {
		return false
	}
	for k := range r.Header {
		if http.CanonicalHeaderKey(k) != k {
			return false // the SDK merges such keys; not worth mirroring
		}
	}
	t = t.UTC()
	var dateBuf [16]byte
	amzDate := string(t.AppendFormat(dateBuf[:0], amzDateFormat))
	date := amzDate[:8]
	r.Header["X-Amz-Date"] = append(r.Header["X-Amz-Date"][:0], amzDate)
	if creds.SessionToken != "" {
		r.Header["X-Amz-Security-Token"] = append(r.Header["X-Amz-Security-Token"][:0], creds.SessionToken)
	}
	sanitizeHost(r)
	host := r.URL.Host
	if r.Host != "" {
		host = r.Host
	}

	bp := s.bufs.Get().(*[]byte)
	defer func() {
		if cap(*bp) <= maxPooledBuffer {
			s.bufs.Put(bp)
		}
	}()
	buf := (*bp)[:0]

	// Signed header names, lower case and sorted: host, content-length when
	// positive, then every header but the ignored ones. Names go at the
	// start of buf and are referenced by offset (no strings allocated).
	var namesArr [24]signedName
	names := append(namesArr[:0], signedName{key: "host"})
	if r.ContentLength > 0 {
		names = append(names, signedName{key: "content-length"})
	}
	for k := range r.Header {
		if k == "Content-Length" || k == "Host" || slices.Contains(sdkIgnoredHeaders[:], k) {
			continue
		}
		names = append(names, signedName{key: k})
	}
	for i := range names {
		names[i].start = len(buf)
		buf = appendLower(buf, names[i].key)
		names[i].end = len(buf)
	}
	slices.SortFunc(names, func(a, b signedName) int { return bytes.Compare(buf[a.start:a.end], buf[b.start:b.end]) })

	// The canonical request.
	crStart := len(buf)
	buf = append(buf, r.Method...)
	buf = append(buf, '\n')
	buf = appendCanonicalURI(buf, r.URL.EscapedPath())
	buf = append(buf, '\n', '\n') // empty query
	for _, n := range names {
		buf = append(buf, buf[n.start:n.end]...)
		buf = append(buf, ':')
		switch n.key {
		case "host":
			buf = appendStrippedSpaces(buf, host)
		case "content-length":
			buf = strconv.AppendInt(buf, r.ContentLength, 10)
		default:
			for i, v := range r.Header[n.key] {
				if i > 0 {
					buf = append(buf, ',')
				}
				buf = appendTrimmedValue(buf, v)
			}
		}
		buf = append(buf, '\n')
	}
	buf = append(buf, '\n')
	shStart := len(buf)
	for i, n := range names {
		if i > 0 {
			buf = append(buf, ';')
		}
		buf = append(buf, buf[n.start:n.end]...)
	}
	shEnd := len(buf)
	buf = append(buf, '\n')
	buf = append(buf, payloadHash...)
	crHash := sha256.Sum256(buf[crStart:])

	// The credential scope, then the string to sign.
	scStart := len(buf)
	buf = append(buf, date...)
	buf = append(buf, '/')
	buf = append(buf, region...)
	buf = append(buf, '/')
	buf = append(buf, service...)
	buf = append(buf, "/aws4_request"...)
	scEnd := len(buf)
	stsStart := len(buf)
	buf = append(buf, sigV4Algorithm+"\n"...)
	buf = append(buf, amzDate...)
	buf = append(buf, '\n')
	buf = append(buf, buf[scStart:scEnd]...)
	buf = append(buf, '\n')
	buf = hex.AppendEncode(buf, crHash[:])
	key := s.keys.get(creds.AccessKeyID, creds.SecretAccessKey, date, region, service)
	buf = slices.Grow(buf, 64+len(buf)-stsStart)
	sig, _ := hmacSHA256(buf[len(buf):], key, buf[stsStart:])

	// The header value: the one string this allocates.
	var sigHex [64]byte
	hex.Encode(sigHex[:], sig[:])
	var auth strings.Builder
	auth.Grow(len(sigV4Algorithm) + 13 + len(creds.AccessKeyID) + 1 + (scEnd - scStart) + 16 + (shEnd - shStart) + 12 + len(sigHex))
	auth.WriteString(sigV4Algorithm + " Credential=")
	auth.WriteString(creds.AccessKeyID)
	auth.WriteByte('/')
	auth.Write(buf[scStart:scEnd])
	auth.WriteString(", SignedHeaders=")
	auth.Write(buf[shStart:shEnd])
	auth.WriteString(", Signature=")
	auth.Write(sigHex[:])
	r.Header["Authorization"] = append(r.Header["Authorization"][:0], auth.String())
	*bp = buf[:0]
	return true
}

// signedName is a header to sign: its key in the request (or the
// pseudo-names host and content-length) and where its lower-case form sits
// in the signing buffer.
type signedName struct {
	key        string
	start, end int
}

// appendStrippedSpaces is the SDK's StripExcessSpaces, which is all it
// applies to the host: spaces (only) trimmed and runs of them collapsed.
func appendStrippedSpaces(dst []byte, v string) []byte {
	v = strings.Trim(v, " ")
	space := false
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == ' ' && space {
			continue
		}
		space = c == ' '
		dst = append(dst, c)
	}
	return dst
}

func appendLower(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}

// sanitizeHost drops a default port from the request's host, as the SDK's
// signer does (and so signs what Go's client sends as Host).
func sanitizeHost(r *http.Request) {
	host := r.Host
	if host == "" {
		host = r.URL.Host
	}
	i := strings.LastIndexByte(host, ':')
	if i < 0 || strings.Contains(host[i:], "]") {
		return
	}
	port := host[i+1:]
	scheme := strings.ToLower(r.URL.Scheme)
	if (scheme == "http" && port == "80") || (scheme == "https" && port == "443") {
		h := host[:i]
		if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
			h = h[1 : len(h)-1]
		}
		r.Host = h
	}
}
