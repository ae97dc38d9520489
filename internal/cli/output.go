package cli

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"gopkg.in/yaml.v3"
)

// table is what a verb shows for -o table and -o csv: a header and rows of
// cells (string, tokens, count, float64 or time.Time). Table cells are for
// people (50,000,000; "-" for no cap); CSV cells are for programs (50000000;
// empty for no cap).
type table struct {
	header []string
	rows   [][]any
	// empty is printed instead of a table without rows (not in CSV, whose
	// header alone says it).
	empty string
}

// tokens is a cap or limit, where 0 means none.
type tokens int64

// count is a number that is always shown, 0 included.
type count int64

func cellText(v any, forCSV bool) string {
	switch v := v.(type) {
	case string:
		return v
	case tokens:
		if v == 0 {
			if forCSV {
				return ""
			}
			return "-"
		}
		if forCSV {
			return strconv.FormatInt(int64(v), 10)
		}
		return tokensText(int64(v))
	case count:
		if forCSV || v == 0 {
			return strconv.FormatInt(int64(v), 10)
		}
		return tokensText(int64(v))
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case time.Time:
		return timeText(v)
	}
	return fmt.Sprint(v)
}

func (t table) write(w io.Writer, forCSV bool) error {
	if forCSV {
		cw := csv.NewWriter(w)
		_ = cw.Write(t.header)
		for _, r := range t.rows {
			rec := make([]string, len(r))
			for i, v := range r {
				rec[i] = cellText(v, true)
			}
			_ = cw.Write(rec)
		}
		cw.Flush()
		return cw.Error()
	}
	if len(t.rows) == 0 && t.empty != "" {
		_, err := fmt.Fprintln(w, t.empty)
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	for i, h := range t.header {
		if i > 0 {
			fmt.Fprint(tw, "\t")
		}
		fmt.Fprint(tw, h)
	}
	fmt.Fprintln(tw)
	for _, r := range t.rows {
		for i, v := range r {
			if i > 0 {
				fmt.Fprint(tw, "\t")
			}
			fmt.Fprint(tw, cellText(v, false))
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}

// printRaw prints an admin API answer (JSON) for -o json or -o yaml and
// reports whether the format was one of those.
func (c *commonFlags) printRaw(w io.Writer, raw []byte) (bool, error) {
	switch c.output {
	case outJSON:
		return true, printJSON(w, raw)
	case outYAML:
		return true, printYAML(w, raw)
	}
	return false, nil
}

// printRows prints rows for -o table or -o csv.
func (c *commonFlags) printRows(w io.Writer, t table) error {
	return t.write(w, c.output == outCSV)
}

// printYAML re-encodes a JSON document as block-style YAML, keeping the
// order of its keys and the types of its scalars (a quoted account ID stays
// a string).
func printYAML(w io.Writer, data []byte) error {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("re-encoding the admin API's answer as YAML: %w", err)
	}
	blockStyle(&doc)
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return fmt.Errorf("re-encoding the admin API's answer as YAML: %w", err)
	}
	if err := enc.Close(); err != nil {
		return err
	}
	_, err := w.Write(buf.Bytes())
	return err
}

// blockStyle drops the flow style and quoting JSON parses with; the encoder
// quotes again whatever would otherwise read as another type.
func blockStyle(n *yaml.Node) {
	n.Style = 0
	for _, c := range n.Content {
		blockStyle(c)
	}
}
