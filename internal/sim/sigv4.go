package sim

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// SigV4Check configures NewSigV4Check.
type SigV4Check struct {
	Service string // signing name, e.g. "organizations"
	// Region is the signing region, e.g. "us-east-1"; empty accepts any (a
	// regional service such as CloudWatch, served for every region at once).
	Region string
	// PathPrefix, when set, is the prefix the request path must have (an
	// RPC v2 service's /service/<name>/operation/<Op>); empty: the path must be
	// "/", as the JSON protocols send it.
	PathPrefix string
	// Secrets maps the access key IDs the simulator accepts to their secrets.
	Secrets map[string]string
	Now     func() time.Time // default time.Now
}

// sigV4MaxSkew is AWS's window for the signing time.
const sigV4MaxSkew = 5 * time.Minute

// NewSigV4Check returns a check of the SigV4 header signature of a request to
// an RPC service of the simulator other than Bedrock (whose check lives in
// internal/authn and is scoped to the bedrock signing name): the target must be
// "/" without a query, as the JSON protocols send it, or under PathPrefix. Its errors are
// OrganizationsError values worded as AWS words them.
func NewSigV4Check(c SigV4Check) func(r *http.Request, body []byte) error {
	now := c.Now
	if now == nil {
		now = time.Now
	}
	mismatch := OrganizationsError(http.StatusBadRequest, "InvalidSignatureException",
		"The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.")
	return func(r *http.Request, body []byte) error {
		auth := r.Header.Values("Authorization")
		if len(auth) == 0 {
			return OrganizationsError(http.StatusBadRequest, "MissingAuthenticationTokenException", "Missing Authentication Token")
		}
		a, ok := parseSigV4(auth)
		if !ok {
			return OrganizationsError(http.StatusBadRequest, "IncompleteSignatureException", "The Authorization header is not a valid AWS4-HMAC-SHA256 signature.")
		}
		if a.service != c.Service || (c.Region != "" && a.region != c.Region) || a.region == "" || a.terminal != "aws4_request" {
			region := c.Region
			if region == "" {
				region = a.region
			}
			return OrganizationsError(http.StatusBadRequest, "InvalidSignatureException",
				"Credential should be scoped to a valid region and service: '"+region+"/"+c.Service+"'.")
		}
		secret, ok := c.Secrets[a.accessKeyID]
		if !ok {
			return OrganizationsError(http.StatusBadRequest, "UnrecognizedClientException", "The security token included in the request is invalid.")
		}
		amzDate := r.Header.Get("X-Amz-Date")
		t, err := time.Parse("20060102T150405Z", amzDate)
		if err != nil || a.date != amzDate[:8] {
			return OrganizationsError(http.StatusBadRequest, "IncompleteSignatureException", "X-Amz-Date is missing or does not match the credential scope.")
		}
		if d := now().Sub(t); d > sigV4MaxSkew || d < -sigV4MaxSkew {
			return OrganizationsError(http.StatusBadRequest, "InvalidSignatureException", "Signature expired: "+amzDate+" is outside the allowed window.")
		}
		path := rawPath(r)
		if r.URL.RawQuery != "" || !signablePath(path, c.PathPrefix) {
			return mismatch
		}
		payload := sha256.Sum256(body)
		payloadHex := hex.EncodeToString(payload[:])
		if h := r.Header.Get("X-Amz-Content-Sha256"); h != "" && h != payloadHex {
			return mismatch
		}
		var canon strings.Builder
		canon.WriteString(r.Method + "\n" + path + "\n\n")
		signed := strings.Split(a.signedHeaders, ";")
		if !strings.Contains(";"+a.signedHeaders+";", ";host;") {
			return mismatch
		}
		for _, name := range signed {
			var v string
			switch name {
			case "host":
				v = r.Host
			case "content-length":
				v = strconv.FormatInt(r.ContentLength, 10)
			default:
				vals := slices.Clone(r.Header.Values(name)) // normalized below: not in place
				if len(vals) == 0 {
					return mismatch
				}
				for i := range vals {
					vals[i] = strings.Join(strings.Fields(vals[i]), " ")
				}
				v = strings.Join(vals, ",")
			}
			canon.WriteString(name + ":" + v + "\n")
		}
		canon.WriteString("\n" + a.signedHeaders + "\n" + payloadHex)
		crHash := sha256.Sum256([]byte(canon.String()))
		scope := a.date + "/" + a.region + "/" + a.service + "/aws4_request"
		sts := "AWS4-HMAC-SHA256\n" + amzDate + "\n" + scope + "\n" + hex.EncodeToString(crHash[:])
		key := hmacSHA256([]byte("AWS4"+secret), a.date)
		for _, part := range []string{a.region, a.service, "aws4_request"} {
			key = hmacSHA256(key, part)
		}
		want := hex.EncodeToString(hmacSHA256(key, sts))
		if !hmac.Equal([]byte(want), []byte(a.signature)) {
			return mismatch
		}
		return nil
	}
}

// signablePath reports whether path is "/" (prefix empty) or lies under
// prefix and needs no percent-encoding, so that it is its own canonical URI.
func signablePath(path, prefix string) bool {
	if prefix == "" {
		return path == "/"
	}
	if !strings.HasPrefix(path, prefix) {
		return false
	}
	for _, c := range []byte(path) {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("/-_.~", c) >= 0
		if !ok {
			return false
		}
	}
	return true
}

func hmacSHA256(key []byte, data string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(data))
	return h.Sum(nil)
}

type sigV4Auth struct {
	accessKeyID, date, region, service, terminal string
	signedHeaders, signature                     string
}

// parseSigV4 parses "AWS4-HMAC-SHA256 Credential=AKID/DATE/REGION/SERVICE/aws4_request,
// SignedHeaders=a;b, Signature=hex" (exactly one Authorization header).
func parseSigV4(auth []string) (sigV4Auth, bool) {
	var a sigV4Auth
	if len(auth) != 1 {
		return a, false
	}
	rest, ok := strings.CutPrefix(auth[0], "AWS4-HMAC-SHA256 ")
	if !ok {
		return a, false
	}
	var cred string
	for part := range strings.SplitSeq(rest, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return a, false
		}
		switch k {
		case "Credential":
			cred = v
		case "SignedHeaders":
			a.signedHeaders = v
		case "Signature":
			a.signature = v
		default:
			return a, false
		}
	}
	f := strings.Split(cred, "/")
	if len(f) != 5 || len(f[1]) != 8 || a.signedHeaders == "" || a.signature == "" {
		return a, false
	}
	a.accessKeyID, a.date, a.region, a.service, a.terminal = f[0], f[1], f[2], f[3], f[4]
	return a, true
}
