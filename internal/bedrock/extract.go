package bedrock

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"strconv"
)

// Response headers InvokeModel reports usage in (canonical MIME form, so they
// can index http.Header directly).
const (
	hdrInputTokens      = "X-Amzn-Bedrock-Input-Token-Count"
	hdrOutputTokens     = "X-Amzn-Bedrock-Output-Token-Count"
	hdrCacheReadTokens  = "X-Amzn-Bedrock-Cache-Read-Input-Token-Count"
	hdrCacheWriteTokens = "X-Amzn-Bedrock-Cache-Write-Input-Token-Count"
)

// UsageFromInvokeHeaders reads the token counts of an InvokeModel response from
// its headers. ok is true when the input or output count is present and every
// count header that is present is a non-negative integer; a malformed header
// makes the whole result untrustworthy, so ok is then false.
func UsageFromInvokeHeaders(h http.Header) (Usage, bool) {
	var u Usage
	var seen, bad bool
	read := func(name string, dst *int64, counts bool) {
		vs := h[name]
		if len(vs) == 0 {
			return
		}
		n, ok := parseCount([]byte(vs[0]))
		if !ok {
			bad = true
			return
		}
		*dst = n
		seen = seen || counts
	}
	read(hdrInputTokens, &u.InputTokens, true)
	read(hdrOutputTokens, &u.OutputTokens, true)
	read(hdrCacheReadTokens, &u.CacheReadTokens, false)
	read(hdrCacheWriteTokens, &u.CacheWriteTokens, false)
	if !seen || bad {
		return Usage{}, false
	}
	return u, true
}

// UsageFromConverseBody reads the top-level "usage" object of a Converse
// response body (inputTokens and outputTokens required, cache counts optional).
// It walks the body without decoding it: only the usage object is parsed.
func UsageFromConverseBody(body []byte) (Usage, bool) {
	var usage []byte
	err := eachMember(body, func(k, v []byte) {
		if string(k) == "usage" {
			usage = v
		}
	})
	if err != nil || usage == nil {
		return Usage{}, false
	}
	return converseUsage(usage)
}

// converseUsage parses a Converse / ConverseStream usage object.
func converseUsage(obj []byte) (Usage, bool) {
	return usageObject(obj, usageFields{
		input: "inputTokens", output: "outputTokens",
		cacheRead: "cacheReadInputTokens", cacheWrite: "cacheWriteInputTokens",
	}, true)
}

// usageFields names the members of a usage object in one of Bedrock's dialects.
type usageFields struct{ input, output, cacheRead, cacheWrite string }

// usageObject parses a JSON object of token counts. With both set, input and
// output must be present; any named member that is present must be a count.
func usageObject(obj []byte, f usageFields, requireBoth bool) (Usage, bool) {
	var u Usage
	var hasIn, hasOut, bad bool
	err := eachMember(obj, func(k, v []byte) {
		var dst *int64
		switch string(k) {
		case f.input:
			dst, hasIn = &u.InputTokens, true
		case f.output:
			dst, hasOut = &u.OutputTokens, true
		case f.cacheRead:
			dst = &u.CacheReadTokens
		case f.cacheWrite:
			dst = &u.CacheWriteTokens
		default:
			return
		}
		if string(v) == "null" {
			return
		}
		n, ok := parseCount(v)
		if !ok {
			bad = true
			return
		}
		*dst = n
	})
	if err != nil || bad {
		return Usage{}, false
	}
	if requireBoth && !(hasIn && hasOut) || !requireBoth && !hasIn && !hasOut {
		return Usage{}, false
	}
	return u, true
}

// parseCount parses a non-negative integer token count made of decimal digits.
func parseCount(v []byte) (int64, bool) {
	if len(v) == 0 || len(v) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// maxJSONCount bounds integers accepted from request bodies: far above any
// model's limit, low enough that sums of them cannot overflow an int64.
const maxJSONCount = 1 << 53

var (
	errNotInteger = errors.New("not a non-negative integer")
	errJSONSyntax = errors.New("malformed JSON")
)

// jsonCount parses a JSON number that must be a non-negative integer. Forms
// such as 100.0 and 1e3 are integers too and are accepted.
func jsonCount(v []byte) (int64, error) {
	if n, ok := parseCount(v); ok && n <= maxJSONCount && (len(v) == 1 || v[0] != '0') {
		return n, nil
	}
	if !isJSONNumber(v) {
		return 0, errNotInteger
	}
	f, err := strconv.ParseFloat(string(v), 64)
	if err != nil || f < 0 || f >= maxJSONCount || f != math.Trunc(f) {
		return 0, errNotInteger
	}
	return int64(f), nil
}

// isJSONNumber reports whether v is exactly a JSON number token.
func isJSONNumber(v []byte) bool {
	end, ok := scanNumber(v, 0)
	return ok && end == len(v)
}

// maxJSONDepth is encoding/json's nesting limit, kept so that validJSON and
// json.Valid agree on every input.
const maxJSONDepth = 10000

// jsonStop marks the bytes that end a run of plain string content: the quote,
// the backslash and the control characters JSON forbids inside strings.
var jsonStop = func() (t [256]bool) {
	for c := range 0x20 {
		t[c] = true
	}
	t['"'], t['\\'] = true, true
	return t
}()

// validJSON reports whether d is one valid JSON value, exactly as json.Valid
// does (invalid UTF-8 inside strings is accepted, nesting is limited to
// maxJSONDepth), but several times faster on the long strings that make up
// prompts and base64 images, and without allocating.
func validJSON(d []byte) bool {
	var objects [maxJSONDepth/64 + 1]uint64 // bit set: that level is an object
	depth := 0
	i := skipWS(d, 0)
	for {
		// A value starts at d[i].
		if i >= len(d) {
			return false
		}
		var ok bool
		switch c := d[i]; c {
		case '{', '[':
			if depth == maxJSONDepth {
				return false
			}
			if c == '{' {
				objects[depth/64] |= 1 << (depth % 64)
			} else {
				objects[depth/64] &^= 1 << (depth % 64)
			}
			depth++
			i = skipWS(d, i+1)
			if i < len(d) && (c == '{' && d[i] == '}' || c == '[' && d[i] == ']') {
				depth--
				i++
				break
			}
			if c == '{' {
				if i, ok = objectKey(d, i); !ok {
					return false
				}
			}
			continue
		case '"':
			if i, ok = scanString(d, i); !ok {
				return false
			}
		case 't':
			if i, ok = scanLiteral(d, i, "true"); !ok {
				return false
			}
		case 'f':
			if i, ok = scanLiteral(d, i, "false"); !ok {
				return false
			}
		case 'n':
			if i, ok = scanLiteral(d, i, "null"); !ok {
				return false
			}
		default:
			if i, ok = scanNumber(d, i); !ok {
				return false
			}
		}
		// A value ended at d[i]: close containers until another value is due.
		for {
			i = skipWS(d, i)
			if depth == 0 {
				return i == len(d)
			}
			if i >= len(d) {
				return false
			}
			inObject := objects[(depth-1)/64]&(1<<((depth-1)%64)) != 0
			if d[i] == ',' {
				i = skipWS(d, i+1)
				if inObject {
					if i, ok = objectKey(d, i); !ok {
						return false
					}
				}
				break
			}
			if inObject && d[i] == '}' || !inObject && d[i] == ']' {
				depth--
				i++
				continue
			}
			return false
		}
	}
}

// objectKey scans `"key" :` and the whitespace after it.
func objectKey(d []byte, i int) (int, bool) {
	if i >= len(d) || d[i] != '"' {
		return i, false
	}
	i, ok := scanString(d, i)
	if !ok {
		return i, false
	}
	i = skipWS(d, i)
	if i >= len(d) || d[i] != ':' {
		return i, false
	}
	return skipWS(d, i+1), true
}

// scanString validates the string whose opening quote is d[i] and returns the
// index just past its closing quote.
func scanString(d []byte, i int) (int, bool) {
	i++
	for {
		for i < len(d) && !jsonStop[d[i]] {
			i++
		}
		if i >= len(d) {
			return i, false
		}
		switch d[i] {
		case '"':
			return i + 1, true
		case '\\':
			if i+1 >= len(d) {
				return i, false
			}
			switch d[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(d) || !isHex(d[i+2]) || !isHex(d[i+3]) || !isHex(d[i+4]) || !isHex(d[i+5]) {
					return i, false
				}
				i += 6
			default:
				return i, false
			}
		default: // a control character
			return i, false
		}
	}
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func scanLiteral(d []byte, i int, lit string) (int, bool) {
	if len(d)-i < len(lit) || string(d[i:i+len(lit)]) != lit {
		return i, false
	}
	return i + len(lit), true
}

// scanNumber validates the number starting at d[i] and returns its end.
func scanNumber(d []byte, i int) (int, bool) {
	start := i
	if i < len(d) && d[i] == '-' {
		i++
	}
	switch {
	case i < len(d) && d[i] == '0':
		i++
	case i < len(d) && '1' <= d[i] && d[i] <= '9':
		for i < len(d) && '0' <= d[i] && d[i] <= '9' {
			i++
		}
	default:
		return start, false
	}
	if i < len(d) && d[i] == '.' {
		i++
		if i >= len(d) || d[i] < '0' || d[i] > '9' {
			return start, false
		}
		for i < len(d) && '0' <= d[i] && d[i] <= '9' {
			i++
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		if i >= len(d) || d[i] < '0' || d[i] > '9' {
			return start, false
		}
		for i < len(d) && '0' <= d[i] && d[i] <= '9' {
			i++
		}
	}
	return i, true
}

// The helpers below walk JSON without building values: they find the members
// the gateway needs in bodies that may be megabytes of prompt. They check the
// structure they walk and skip nested values leniently; callers that must
// reject invalid JSON run json.Valid first.

// eachMember calls fn with the key (unescaped) and raw value of every member of
// the JSON object d holds, in order. It returns errJSONSyntax when d is not an
// object.
func eachMember(d []byte, fn func(key, val []byte)) error {
	i := skipWS(d, 0)
	if i >= len(d) || d[i] != '{' {
		return errJSONSyntax
	}
	i = skipWS(d, i+1)
	if i < len(d) && d[i] == '}' {
		return trailing(d, i+1)
	}
	for {
		if i >= len(d) || d[i] != '"' {
			return errJSONSyntax
		}
		end, err := skipString(d, i)
		if err != nil {
			return err
		}
		key := d[i+1 : end-1]
		if bytes.IndexByte(key, '\\') >= 0 {
			if key, err = unescapeString(d[i:end]); err != nil {
				return err
			}
		}
		i = skipWS(d, end)
		if i >= len(d) || d[i] != ':' {
			return errJSONSyntax
		}
		i = skipWS(d, i+1)
		vend, err := skipValue(d, i)
		if err != nil {
			return err
		}
		fn(key, d[i:vend])
		i = skipWS(d, vend)
		if i >= len(d) {
			return errJSONSyntax
		}
		switch d[i] {
		case ',':
			i = skipWS(d, i+1)
		case '}':
			return trailing(d, i+1)
		default:
			return errJSONSyntax
		}
	}
}

func trailing(d []byte, i int) error {
	if skipWS(d, i) != len(d) {
		return errJSONSyntax
	}
	return nil
}

// stringValue returns the unescaped content of a raw JSON string value.
func stringValue(v []byte) ([]byte, bool) {
	if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
		return nil, false
	}
	s := v[1 : len(v)-1]
	if bytes.IndexByte(s, '\\') < 0 {
		return s, true
	}
	u, err := unescapeString(v)
	return u, err == nil
}

// unescapeString decodes a quoted JSON string with escapes (a rare path).
func unescapeString(q []byte) ([]byte, error) {
	var s string
	if err := json.Unmarshal(q, &s); err != nil {
		return nil, errJSONSyntax
	}
	return []byte(s), nil
}

func skipWS(d []byte, i int) int {
	for i < len(d) {
		switch d[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// skipValue returns the index just past the JSON value starting at d[i].
func skipValue(d []byte, i int) (int, error) {
	if i >= len(d) {
		return 0, errJSONSyntax
	}
	switch d[i] {
	case '"':
		return skipString(d, i)
	case '{', '[':
		return skipContainer(d, i)
	case ',', ':', '}', ']':
		return 0, errJSONSyntax
	}
	// A literal or number: runs to the next delimiter.
	j := i
	for j < len(d) {
		switch d[j] {
		case ',', '}', ']', ' ', '\t', '\n', '\r', '"', '{', '[', ':':
			return j, nil
		}
		j++
	}
	return j, nil
}

// skipString returns the index just past the string whose opening quote is d[i].
func skipString(d []byte, i int) (int, error) {
	j := i + 1
	for {
		k := bytes.IndexByte(d[j:], '"')
		if k < 0 {
			return 0, errJSONSyntax
		}
		j += k
		// The quote closes the string unless an odd run of backslashes escapes it.
		n := 0
		for p := j - 1; p > i && d[p] == '\\'; p-- {
			n++
		}
		if n%2 == 0 {
			return j + 1, nil
		}
		j++
	}
}

// skipContainer returns the index just past the object or array opening at d[i].
func skipContainer(d []byte, i int) (int, error) {
	depth := 0
	for j := i; j < len(d); j++ {
		switch d[j] {
		case '"':
			e, err := skipString(d, j)
			if err != nil {
				return 0, err
			}
			j = e - 1
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				return j + 1, nil
			}
		}
	}
	return 0, errJSONSyntax
}
