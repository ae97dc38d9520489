package admin

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"

	"github.com/bedrock-gateway/gateway/internal/state"
)

// shareRow is one share target read from a request.
type shareRow struct {
	Line          int  // 1-based line in a CSV body; 0 for JSON
	Index         *int // position in a JSON targets list
	Target        string
	MonthlyTokens int64
}

// maxCSVValue bounds how much of a bad value is echoed back.
const maxCSVValue = 80

// isTargetID reports whether s has the form of something a share can name.
func isTargetID(s string) bool {
	return state.IsAccountID(s) || state.IsOUID(s) || state.IsOrgID(s) || state.IsRootID(s)
}

// parseSharesCSV reads a share list: one target per line, optionally a second
// column with the share's monthly_tokens (defaultTokens when absent or empty).
// It tolerates a UTF-8 BOM, CRLF, blank lines, surrounding whitespace, fields in
// double quotes, '#' comments (whole-line or trailing) and one header line
// before the first target (a first field made only of letters, spaces, '_' and
// '-' that is not an ID, such as "target" or "account_id,monthly_tokens").
//
// It reports every malformed row and every target named twice, each with its
// line number; rows is only meaningful when problems is empty.
func parseSharesCSV(data []byte, defaultTokens int64) (rows []shareRow, problems []problem) {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	seen := make(map[string]int)
	first := true
	for lineNo := 1; len(data) > 0; lineNo++ {
		var line []byte
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			line, data = data, nil
		}
		if i := bytes.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		text := strings.TrimSpace(string(line))
		if text == "" {
			continue
		}
		fields := splitFields(text)
		if first {
			first = false
			if isHeader(fields[0]) {
				continue
			}
		}
		bad := func(format string, args ...any) {
			problems = append(problems, problem{Line: lineNo, Value: clip(text), Problem: fmt.Sprintf(format, args...)})
		}
		target := fields[0]
		switch {
		case len(fields) > 2:
			bad("expected at most 2 columns (target, monthly_tokens), got %d", len(fields))
			continue
		case target == "":
			bad("the target is empty")
			continue
		case !isTargetID(target):
			bad("%s", notATarget)
			continue
		}
		tokens := defaultTokens
		if len(fields) == 2 && fields[1] != "" {
			n, err := strconv.ParseInt(fields[1], 10, 64)
			if err != nil || n < 0 {
				bad("monthly_tokens %q is not a non-negative whole number", clip(fields[1]))
				continue
			}
			tokens = n
		}
		if prev, dup := seen[target]; dup {
			bad("duplicate: %s is already on line %d", target, prev)
			continue
		}
		seen[target] = lineNo
		rows = append(rows, shareRow{Line: lineNo, Target: target, MonthlyTokens: tokens})
	}
	return rows, problems
}

const notATarget = "not an account ID (12 digits), OU ID (ou-xxxx-xxxxxxxx), organization ID (o-...) or root ID (r-...)"

// isHeader reports whether a first field names a column rather than a target.
func isHeader(field string) bool {
	if field == "" || isTargetID(field) {
		return false
	}
	for _, c := range field {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c == ' ' || c == '-') {
			return false
		}
	}
	return true
}

func unquote(s string) string {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		return strings.TrimSpace(s[1 : len(s)-1])
	}
	return s
}

func clip(s string) string {
	if len(s) <= maxCSVValue {
		return s
	}
	return strings.ToValidUTF8(s[:maxCSVValue], "") + "..."
}

// splitFields splits a row at commas into trimmed, unquoted fields; beyond the
// third, fields are only counted (for the "too many columns" report).
func splitFields(text string) []string {
	var buf [3]string
	fields := buf[:0]
	for {
		f, rest, more := strings.Cut(text, ",")
		if len(fields) < len(buf) {
			fields = append(fields, unquote(strings.TrimSpace(f)))
		} else {
			fields = append(fields, "") // only counted: too many columns
		}
		if !more {
			return fields
		}
		text = rest
	}
}
