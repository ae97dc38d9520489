package authn

import (
	"strings"

	"github.com/bedrock-gateway/gateway/internal/bedrock"
)

// sigV4Algorithm is the only signing algorithm accepted (SigV4a is not).
const sigV4Algorithm = "AWS4-HMAC-SHA256"

// SigV4Header is a parsed `Authorization: AWS4-HMAC-SHA256 ...` header.
type SigV4Header struct {
	AccessKeyID string
	Date        string // YYYYMMDD from the credential scope
	Region      string
	Service     string
	Terminal    string // "aws4_request" when well formed
	// SignedHeaders lists the header names in the order the client signed them.
	SignedHeaders []string
	Signature     string // 64 lowercase or uppercase hex digits
}

// authHeader is the allocation-free form of SigV4Header used on the hot path:
// every field is a substring of the header value.
type authHeader struct {
	accessKeyID, date, region, service, terminal string
	scope                                        string // date/region/service/terminal
	signedHeaders                                string // "a;b;c"
	signature                                    string
}

// ParseAuthorization parses a SigV4 Authorization header value. It checks the
// syntax only; Authenticate checks the service, terminator and dates. Errors
// are *bedrock.Error.
func ParseAuthorization(v string) (SigV4Header, error) {
	a, err := parseAuthHeader(v)
	if err != nil {
		return SigV4Header{}, err
	}
	h := SigV4Header{
		AccessKeyID:   a.accessKeyID,
		Date:          a.date,
		Region:        a.region,
		Service:       a.service,
		Terminal:      a.terminal,
		SignedHeaders: strings.Split(a.signedHeaders, ";"),
		Signature:     a.signature,
	}
	return h, nil
}

func parseAuthHeader(v string) (authHeader, *bedrock.Error) {
	var a authHeader
	alg, rest, _ := strings.Cut(v, " ")
	if alg != sigV4Algorithm {
		if strings.HasPrefix(v, "AWS4-") {
			return a, bedrock.BadSignature("Unsupported AWS 'algorithm': '" + truncate(alg, 64) + "'")
		}
		return a, errIncompleteAuth(false, false, false)
	}
	var cred, signed, sig string
	var haveCred, haveSigned, haveSig bool
	for rest != "" {
		var part string
		part, rest, _ = strings.Cut(rest, ",")
		part = strings.Trim(part, " ")
		if part == "" {
			continue
		}
		key, val, ok := strings.Cut(part, "=")
		if !ok {
			return a, bedrock.BadSignature("Invalid key=value pair (missing equal-sign) in Authorization header")
		}
		switch key {
		case "Credential":
			if haveCred {
				return a, errDuplicateAuthParam(key)
			}
			cred, haveCred = val, true
		case "SignedHeaders":
			if haveSigned {
				return a, errDuplicateAuthParam(key)
			}
			signed, haveSigned = val, true
		case "Signature":
			if haveSig {
				return a, errDuplicateAuthParam(key)
			}
			sig, haveSig = val, true
		default:
			return a, bedrock.BadSignature("Authorization header has an unexpected parameter: '" + truncate(key, 64) + "'")
		}
	}
	if !haveCred || !haveSigned || !haveSig {
		return a, errIncompleteAuth(haveCred, haveSigned, haveSig)
	}
	if err := parseCredential(cred, &a); err != nil {
		return a, err
	}
	if !validSignedHeaders(signed) {
		return a, bedrock.BadSignature("Authorization header has a malformed 'SignedHeaders' parameter")
	}
	a.signedHeaders = signed
	if len(sig) != 64 || !isHex(sig) {
		return a, bedrock.BadSignature("Authorization header has a malformed 'Signature' parameter")
	}
	a.signature = sig
	return a, nil
}

// parseCredential splits AKID/date/region/service/terminal.
func parseCredential(cred string, a *authHeader) *bedrock.Error {
	akid, scope, ok := strings.Cut(cred, "/")
	if !ok || akid == "" {
		return errMalformedCredential()
	}
	date, rest, ok1 := strings.Cut(scope, "/")
	region, rest, ok2 := strings.Cut(rest, "/")
	service, terminal, ok3 := strings.Cut(rest, "/")
	if !ok1 || !ok2 || !ok3 || strings.IndexByte(terminal, '/') >= 0 {
		return errMalformedCredential()
	}
	if len(date) != 8 || !isDigits(date) {
		return bedrock.BadSignature("Invalid credential date \"" + truncate(date, 16) + "\". This date is not the standard AMZ format (YYYYMMDD).")
	}
	if region == "" || !isRegion(region) {
		return bedrock.BadSignature("Credential should be scoped to a valid region.")
	}
	if service == "" || terminal == "" {
		return errMalformedCredential()
	}
	a.accessKeyID, a.date, a.region, a.service, a.terminal = akid, date, region, service, terminal
	a.scope = scope
	return nil
}

func errMalformedCredential() *bedrock.Error {
	return bedrock.BadSignature("Credential should be scoped to a valid credential: '<access key ID>/<date>/<region>/<service>/aws4_request'.")
}

func errDuplicateAuthParam(key string) *bedrock.Error {
	return bedrock.BadSignature("Authorization header has a duplicate '" + key + "' parameter")
}

// errIncompleteAuth lists the missing parameters the way AWS does.
func errIncompleteAuth(haveCred, haveSigned, haveSig bool) *bedrock.Error {
	var b strings.Builder
	add := func(s string) {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(s)
	}
	if !haveCred {
		add("Authorization header requires 'Credential' parameter.")
	}
	if !haveSig {
		add("Authorization header requires 'Signature' parameter.")
	}
	if !haveSigned {
		add("Authorization header requires 'SignedHeaders' parameter.")
	}
	return bedrock.BadSignature(b.String())
}

// validSignedHeaders accepts a non-empty ';'-separated list of header names
// made of token characters (and the ':' of HTTP/2 pseudo-headers).
func validSignedHeaders(s string) bool {
	if s == "" {
		return false
	}
	prevSep := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == ';' {
			if prevSep {
				return false
			}
			prevSep = true
			continue
		}
		if !isTokenChar(c) && c != ':' {
			return false
		}
		prevSep = false
	}
	return !prevSep
}

func isTokenChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// isRegion accepts region-shaped names (lowercase letters, digits, '-'); any
// region is accepted because the gateway re-signs for its own.
func isRegion(s string) bool {
	if len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// truncate bounds client-supplied text echoed in error messages.
func truncate(s string, n int) string {
	if len(s) > n {
		s = s[:n]
	}
	return strings.ToValidUTF8(s, "?")
}
