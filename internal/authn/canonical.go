package authn

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// The canonical request is built exactly as the SDKs build it (AWS SigV4
// "Create a canonical request"), but from what was received on the wire.

// rawTarget returns the request target's path and query exactly as received.
// Both the HTTP/1 and HTTP/2 servers of net/http put the raw request target
// (`:path` on HTTP/2) in RequestURI; an absolute-form target or a request built
// in process (RequestURI empty) falls back to the URL's escaped form.
func rawTarget(r *http.Request) (path, query string) {
	if uri := r.RequestURI; uri != "" && uri[0] == '/' {
		path, query, _ = strings.Cut(uri, "?")
		return path, query
	}
	return r.URL.EscapedPath(), r.URL.RawQuery
}

// appendCanonicalURI percent-encodes the raw path again, keeping '/', as every
// SDK does for services other than S3 (so "%3A" becomes "%253A").
func appendCanonicalURI(dst []byte, rawPath string) []byte {
	if rawPath == "" {
		return append(dst, '/')
	}
	return appendEscaped(dst, rawPath, true)
}

type queryPair struct{ key, value string }

// appendCanonicalQuery appends the canonical query string: names and values
// decoded once (as url.ParseQuery does, the way the Go signer reads them),
// RFC 3986-encoded, and sorted after encoding by name then value. A query that
// does not parse is refused: parameters the signature does not cover must not
// travel on.
func appendCanonicalQuery(dst []byte, rawQuery string) ([]byte, bool) {
	if rawQuery == "" {
		return dst, true
	}
	values, err := url.ParseQuery(rawQuery)
	if err != nil {
		return dst, false
	}
	pairs := make([]queryPair, 0, len(values))
	var scratch []byte
	for k, vs := range values {
		scratch = appendEscaped(scratch[:0], k, false)
		ek := string(scratch)
		for _, v := range vs {
			scratch = appendEscaped(scratch[:0], v, false)
			pairs = append(pairs, queryPair{ek, string(scratch)})
		}
	}
	slices.SortFunc(pairs, func(a, b queryPair) int {
		if c := strings.Compare(a.key, b.key); c != 0 {
			return c
		}
		return strings.Compare(a.value, b.value)
	})
	for i, p := range pairs {
		if i > 0 {
			dst = append(dst, '&')
		}
		dst = append(dst, p.key...)
		dst = append(dst, '=')
		dst = append(dst, p.value...)
	}
	return dst, true
}

// appendCanonicalHeaders appends "name:value\n" for each name of signedHeaders
// in the order given. It reports false when a signed header is absent: the
// caller then answers with a signature mismatch.
func appendCanonicalHeaders(dst []byte, r *http.Request, signedHeaders string) ([]byte, bool) {
	rest := signedHeaders
	for rest != "" {
		var name string
		name, rest, _ = strings.Cut(rest, ";")
		dst = append(dst, name...)
		dst = append(dst, ':')
		switch {
		case strings.EqualFold(name, "host"), strings.EqualFold(name, ":authority"):
			// HTTP/1 Host and HTTP/2 :authority both arrive in r.Host.
			if r.Host == "" {
				return dst, false
			}
			dst = appendTrimmedValue(dst, r.Host)
		default:
			values := headerValues(r.Header, name)
			if values == nil {
				if !strings.EqualFold(name, "content-length") || r.ContentLength < 0 {
					return dst, false
				}
				// A request built in process may carry its length only here.
				dst = strconv.AppendInt(dst, r.ContentLength, 10)
				break
			}
			for i, v := range values {
				if i > 0 {
					dst = append(dst, ',')
				}
				dst = appendTrimmedValue(dst, v)
			}
		}
		dst = append(dst, '\n')
	}
	return dst, true
}

// headerValues finds the values of a header named in any case without
// allocating: the name is put in canonical form in a stack buffer.
func headerValues(h http.Header, name string) []string {
	var buf [64]byte
	if len(name) <= len(buf) {
		if k, ok := appendCanonicalKey(buf[:0], name); ok {
			if v, ok := h[string(k)]; ok {
				return v
			}
		}
	}
	// Not canonicalisable, too long, or stored under a non-canonical key.
	for k, v := range h {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return nil
}

// appendCanonicalKey mirrors textproto.CanonicalMIMEHeaderKey for names made
// of token characters: upper case at the start and after '-', lower elsewhere.
func appendCanonicalKey(dst []byte, name string) ([]byte, bool) {
	upper := true
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !isTokenChar(c) {
			return dst, false
		}
		if upper && 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		} else if !upper && 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
		upper = c == '-'
	}
	return dst, true
}

// appendTrimmedValue appends v without leading and trailing whitespace and
// with each run of spaces collapsed to one, as the Go signer does. (botocore
// and the JS SDK also collapse tabs; a tab inside a header value signed by
// them would not verify, and no Bedrock header carries one.)
func appendTrimmedValue(dst []byte, v string) []byte {
	v = strings.TrimSpace(v)
	space := false
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == ' ' {
			if space {
				continue
			}
			space = true
		} else {
			space = false
		}
		dst = append(dst, c)
	}
	return dst
}

const upperHex = "0123456789ABCDEF"

// appendEscaped percent-encodes every byte outside the RFC 3986 unreserved set
// (A-Z a-z 0-9 - . _ ~), with upper-case hex, keeping '/' when keepSlash.
func appendEscaped(dst []byte, s string, keepSlash bool) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isUnreserved(c) || (c == '/' && keepSlash) {
			dst = append(dst, c)
			continue
		}
		dst = append(dst, '%', upperHex[c>>4], upperHex[c&15])
	}
	return dst
}

func isUnreserved(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}
