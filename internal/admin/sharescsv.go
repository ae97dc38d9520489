package admin

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
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

// maxCSVLine bounds one line of a share list, comment included: a target and
// a count need a few dozen bytes, and a longer line is refused without being
// held in memory.
const maxCSVLine = 4096

// maxProblems bounds the problems an error lists; the message still counts
// them all. A large upload of bad rows would otherwise get an error body many
// times its own size.
const maxProblems = 100

// problemList keeps the first maxProblems problems and counts every one.
type problemList struct {
	items []problem
	total int
}

// room reports whether another problem would still be listed, so callers
// build its text only then.
func (l *problemList) room() bool { return len(l.items) < maxProblems }

func (l *problemList) add(p problem) {
	l.total++
	if l.room() {
		l.items = append(l.items, p)
	}
}

// isTargetID reports whether s has the form of something a share can name.
func isTargetID(s string) bool {
	return state.IsAccountID(s) || state.IsOUID(s) || state.IsOrgID(s) || state.IsRootID(s)
}

// csvRow is one row of a share list as scanned: a line that is not blank,
// a comment or the header. Its byte slices are valid only during the
// callback of scanSharesCSV.
type csvRow struct {
	line    int
	text    []byte // the row, comment and surrounding space removed (cut for a long line)
	target  []byte // first field, trimmed and unquoted
	count   []byte // second field
	columns int
	tokens  int64 // monthly_tokens: the second field, else the default
	fault   rowFault
	prev    int // for faultDuplicate: the line that named the target first
}

// rowFault is what is wrong with a row, if anything.
type rowFault uint8

const (
	faultNone rowFault = iota
	faultLong
	faultColumns
	faultEmpty
	faultTarget
	faultTokens
	faultDuplicate
)

// problem describes a faulty row; built only for rows that are reported.
func (r *csvRow) problem() string {
	switch r.fault {
	case faultLong:
		return fmt.Sprintf("the line is longer than %d bytes", maxCSVLine)
	case faultColumns:
		return fmt.Sprintf("expected at most 2 columns (target, monthly_tokens), got %d", r.columns)
	case faultEmpty:
		return "the target is empty"
	case faultTarget:
		return notATarget
	case faultTokens:
		return fmt.Sprintf("monthly_tokens %q is not a non-negative whole number", clip(string(r.count)))
	case faultDuplicate:
		return fmt.Sprintf("duplicate: %s is already on line %d", r.target, r.prev)
	}
	return ""
}

// parseSharesCSV reads a share list: one target per line, optionally a second
// column with the share's monthly_tokens (defaultTokens when absent or empty).
// It tolerates a UTF-8 BOM, CRLF, blank lines, surrounding whitespace, fields in
// double quotes, '#' comments (whole-line or trailing) and one header line
// before the first target (a first field made only of letters, spaces, '_' and
// '-' that is not an ID, such as "target" or "account_id,monthly_tokens").
//
// It reads r a line at a time, never holding more than maxCSVLine bytes of
// it, and reports every malformed row (a line longer than maxCSVLine, more
// than 2 columns, a bad target or count) and every target named twice, each
// with its line number (the first maxProblems of them, and their count); rows
// is only meaningful when there are no problems. The error is r's.
func parseSharesCSV(r io.Reader, defaultTokens int64) (rows []shareRow, problems problemList, err error) {
	err = scanSharesCSV(r, defaultTokens, func(row *csvRow, target string) {
		if row.fault == faultNone {
			rows = append(rows, shareRow{Line: row.line, Target: target, MonthlyTokens: row.tokens})
			return
		}
		// The message is built only for a problem that will be listed: a
		// large upload of bad rows costs no garbage per line.
		if !problems.room() {
			problems.total++
			return
		}
		problems.add(problem{Line: row.line, Value: clip(string(row.text)), Problem: row.problem()})
	})
	if err != nil {
		return nil, problems, err
	}
	return rows, problems, nil
}

// scanSharesCSV reads a share list (see parseSharesCSV) and calls fn for
// every row, good or not, in order; target is the row's target as a string
// for a good row (a duplicate is faulty), else "". The error is r's.
func scanSharesCSV(r io.Reader, defaultTokens int64, fn func(row *csvRow, target string)) error {
	br := bufio.NewReaderSize(r, maxCSVLine)
	seen := make(map[string]int)
	first := true
	var row csvRow
	for lineNo := 1; ; lineNo++ {
		line, rerr := br.ReadSlice('\n')
		if lineNo == 1 {
			line = bytes.TrimPrefix(line, []byte("\xef\xbb\xbf"))
		}
		if errors.Is(rerr, bufio.ErrBufferFull) {
			// Report the line by its start and skip the rest of it unread.
			row = csvRow{line: lineNo, text: line[:min(len(line), maxCSVValue+1)], fault: faultLong}
			row.target = row.text
			fn(&row, "")
			first = false
			for errors.Is(rerr, bufio.ErrBufferFull) {
				_, rerr = br.ReadSlice('\n')
			}
			if rerr == io.EOF {
				return nil
			}
			if rerr != nil {
				return rerr
			}
			continue
		}
		if rerr != nil && rerr != io.EOF {
			return rerr
		}
		if scanShareLine(line, lineNo, defaultTokens, &first, seen, &row) {
			target := ""
			if row.fault == faultNone {
				target = string(row.target)
				seen[target] = lineNo
			}
			fn(&row, target)
		}
		if rerr == io.EOF {
			return nil
		}
	}
}

// scanShareLine reads one line of a share list into row; false for a line
// that is no row (blank, a comment, the header).
func scanShareLine(line []byte, lineNo int, defaultTokens int64, first *bool, seen map[string]int, row *csvRow) bool {
	if i := bytes.IndexByte(line, '#'); i >= 0 {
		line = line[:i]
	}
	text := bytes.TrimSpace(line)
	if len(text) == 0 {
		return false
	}
	// Fields stay bytes until a row is good: a bad row allocates nothing.
	f0, f1 := splitFields(text)
	if *first {
		*first = false
		if isHeader(string(f0)) {
			return false
		}
	}
	*row = csvRow{line: lineNo, text: text, target: f0, count: f1, columns: bytes.Count(text, []byte{','}) + 1, tokens: defaultTokens}
	switch {
	case row.columns > 2:
		row.fault = faultColumns
	case len(f0) == 0:
		row.fault = faultEmpty
	case len(f0) > maxTargetLen || !isTargetID(string(f0)):
		row.fault = faultTarget
	}
	if row.fault != faultNone {
		return true
	}
	if len(f1) > 0 {
		n, err := strconv.ParseInt(string(f1), 10, 64)
		if err != nil || n < 0 {
			row.fault = faultTokens
			return true
		}
		row.tokens = n
	}
	if prev, dup := seen[string(f0)]; dup {
		row.fault, row.prev = faultDuplicate, prev
	}
	return true
}

// maxTargetLen is longer than any target ID (an OU ID is at most 68 bytes).
const maxTargetLen = 80

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

func unquote(s []byte) []byte {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		return bytes.TrimSpace(s[1 : len(s)-1])
	}
	return s
}

func clip(s string) string {
	if len(s) <= maxCSVValue {
		return s
	}
	return strings.ToValidUTF8(s[:maxCSVValue], "") + "..."
}

// splitFields returns the first two fields of a row, split at commas, trimmed
// and unquoted (the second empty when absent); columns beyond them are only
// counted, by the caller.
func splitFields(text []byte) (f0, f1 []byte) {
	f0, rest, _ := bytes.Cut(text, []byte{','})
	f1, _, _ = bytes.Cut(rest, []byte{','})
	return unquote(bytes.TrimSpace(f0)), unquote(bytes.TrimSpace(f1))
}
