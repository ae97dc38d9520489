package proxy

import (
	"net/http"
	"net/textproto"
	"strings"
)

// hopHeaders are removed in both directions (RFC 9110 §7.6.1), plus legacy ones
// some clients still send.
var hopHeaders = [...]string{
	"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade", "Alt-Svc",
}

// callerOnlyHeaders never travel upstream: the caller's credentials and what the
// gateway computes itself. Accept-Encoding is dropped so the upstream answers
// uncompressed and usage can be read as the bytes pass.
var callerOnlyHeaders = [...]string{
	"Authorization", "X-Amz-Date", "X-Amz-Security-Token", "X-Amz-Content-Sha256",
	"Host", "Content-Length", "Expect", "Accept-Encoding",
	"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto",
}

// copyRequestHeaders copies the caller's end-to-end headers into dst. The
// value slices are shared, not copied (one allocation per header saved):
// nothing changes a request's values in place, and the capacity is capped
// so that an append on either side copies rather than writes into the other.
func copyRequestHeaders(dst, src http.Header) {
	connTokens := connectionTokens(src)
	for k, vv := range src {
		if isHop(k) || isCallerOnly(k) || connTokens.has(k) {
			continue
		}
		dst[k] = vv[:len(vv):len(vv)]
	}
}

// copyResponseHeaders copies upstream end-to-end headers into dst.
func copyResponseHeaders(dst, src http.Header) {
	connTokens := connectionTokens(src)
	for k, vv := range src {
		if isHop(k) || connTokens.has(k) || k == "Content-Length" {
			continue
		}
		dst[k] = vv
	}
}

func isHop(k string) bool {
	for _, h := range hopHeaders {
		if k == h {
			return true
		}
	}
	return false
}

func isCallerOnly(k string) bool {
	for _, h := range callerOnlyHeaders {
		if k == h {
			return true
		}
	}
	return false
}

type tokenSet []string

func (t tokenSet) has(k string) bool {
	for _, s := range t {
		if s == k {
			return true
		}
	}
	return false
}

// connectionTokens lists the headers named in Connection, canonicalised: they
// are hop-by-hop too, whatever their name (a spoofed "Connection: X-Amzn-Bedrock-Trace"
// must not smuggle removal or forwarding decisions past us).
func connectionTokens(h http.Header) tokenSet {
	vv := h["Connection"]
	if len(vv) == 0 {
		return nil
	}
	var out tokenSet
	for _, v := range vv {
		for _, f := range strings.Split(v, ",") {
			if f = textproto.TrimString(f); f != "" {
				out = append(out, http.CanonicalHeaderKey(f))
			}
		}
	}
	return out
}
