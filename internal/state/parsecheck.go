package state

import (
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/bedrock-gateway/gateway/internal/suggest"
)

// Problem is one thing wrong in a state document, where the user wrote it:
// the line and column, and the path of keys as written (entitlements[0].limits),
// never Go type names.
type Problem struct {
	Line, Column int
	Path         string
	Message      string
}

func (p Problem) String() string {
	where := ""
	if p.Line > 0 {
		where = fmt.Sprintf("line %d, column %d: ", p.Line, p.Column)
	}
	if p.Path != "" {
		return where + p.Path + ": " + p.Message
	}
	return where + p.Message
}

// ParseError lists every problem Parse found, in document order.
type ParseError struct {
	// File is the file the document came from, when known (LoadFile).
	File     string
	Problems []Problem
}

func (e *ParseError) Error() string {
	var b strings.Builder
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteByte('\n')
		}
		if e.File != "" {
			if p.Line > 0 {
				fmt.Fprintf(&b, "%s:%d:%d: ", e.File, p.Line, p.Column)
				p.Line = 0
			} else {
				b.WriteString(e.File + ": ")
			}
		}
		b.WriteString(p.String())
	}
	return b.String()
}

var (
	yamlTimeType    = reflect.TypeFor[time.Time]()
	unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()
)

// unknownKeys walks a YAML node next to the Go type it decodes into and lists
// every key the type does not have, with a suggestion when one is close.
func unknownKeys(n *yaml.Node, t reflect.Type, path string, out *[]Problem) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			unknownKeys(c, t, path, out)
		}
		return
	case yaml.AliasNode:
		if n.Alias != nil {
			unknownKeys(n.Alias, t, path, out)
		}
		return
	}
	if t == yamlTimeType || reflect.PointerTo(t).Implements(unmarshalerType) {
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return // a type error, reported by the decoder
		}
		fields := map[string]reflect.Type{}
		yamlFields(t, fields)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Value == "<<" {
				continue // a merge key: its mapping is checked where it is defined
			}
			ft, ok := fields[k.Value]
			if !ok {
				msg := "unknown field " + strconv.Quote(k.Value)
				if s := closest(k.Value, fields); s != "" {
					msg += " (did you mean " + strconv.Quote(s) + "?)"
				} else {
					msg += " (valid fields: " + strings.Join(sortedKeys(fields), ", ") + ")"
				}
				*out = append(*out, Problem{Line: k.Line, Column: k.Column, Path: path, Message: msg})
				continue
			}
			unknownKeys(v, ft, joinPath(path, k.Value), out)
		}
	case reflect.Slice, reflect.Array:
		if n.Kind != yaml.SequenceNode {
			return
		}
		for i, c := range n.Content {
			unknownKeys(c, t.Elem(), path+"["+strconv.Itoa(i)+"]", out)
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			unknownKeys(n.Content[i+1], t.Elem(), joinPath(path, n.Content[i].Value), out)
		}
	}
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// yamlFields maps a struct's YAML keys (as yaml.v3 reads them) to their types.
func yamlFields(t reflect.Type, into map[string]reflect.Type) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if strings.Contains(","+opts+",", ",inline,") {
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				yamlFields(ft, into)
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		into[name] = f.Type
	}
}

func sortedKeys(m map[string]reflect.Type) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// closest is the valid key nearest to key when it is near enough to be a typo.
func closest(key string, valid map[string]reflect.Type) string {
	names := make([]string, 0, len(valid))
	for v := range valid {
		names = append(names, v)
	}
	return suggest.Closest(key, names)
}

// typeErrorLine matches one of yaml.v3's TypeError messages.
var typeErrorLine = regexp.MustCompile("^line (\\d+): cannot unmarshal !!(\\w+)(?: `(.*)`)? into (.+)$")

// typeProblems turns yaml.v3's type errors into problems in the user's terms:
// the path of the value (found by its line) and what was expected.
func typeProblems(te *yaml.TypeError, paths map[int][]pathAt) []Problem {
	var out []Problem
	for _, msg := range te.Errors {
		m := typeErrorLine.FindStringSubmatch(msg)
		if m == nil {
			out = append(out, Problem{Message: strings.TrimPrefix(msg, "yaml: ")})
			continue
		}
		line, _ := strconv.Atoi(m[1])
		p := Problem{Line: line, Message: fmt.Sprintf("%s is not %s", valueText(m[2], m[3]), wanted(m[4]))}
		if at, ok := locate(paths[line], m[2], m[3]); ok {
			p.Path, p.Column = at.path, at.column
		}
		out = append(out, p)
	}
	return out
}

func valueText(tag, value string) string {
	switch tag {
	case "map":
		return "a mapping"
	case "seq":
		return "a list"
	}
	return strconv.Quote(value)
}

// wanted says in plain words what a Go type expects.
func wanted(goType string) string {
	switch {
	case strings.HasPrefix(goType, "[]"):
		return "a list"
	case strings.HasPrefix(goType, "map["):
		return "a mapping"
	case goType == "time.Time":
		return "a timestamp (RFC 3339, e.g. 2026-01-31T12:00:00Z)"
	case goType == "bool":
		return "true or false"
	case strings.HasPrefix(goType, "int"), strings.HasPrefix(goType, "uint"):
		return "a whole number"
	case strings.HasPrefix(goType, "float"):
		return "a number"
	case goType == "string":
		return "a string"
	}
	return "a mapping"
}

type pathAt struct {
	path   string
	column int
	kind   yaml.Kind
	value  string
}

// valuePaths lists, per line, the values that start on it with their paths,
// for placing the decoder's type errors (which give only a line and the value).
func valuePaths(n *yaml.Node, path string, out map[int][]pathAt) {
	add := func(v *yaml.Node, p string) {
		out[v.Line] = append(out[v.Line], pathAt{p, v.Column, v.Kind, v.Value})
	}
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			valuePaths(c, path, out)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := joinPath(path, k.Value)
			add(v, p)
			valuePaths(v, p, out)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			p := path + "[" + strconv.Itoa(i) + "]"
			add(c, p)
			valuePaths(c, p, out)
		}
	}
}

// locate finds the value a type error is about: on its line, of its kind, and
// for a scalar with its text.
func locate(candidates []pathAt, tag, value string) (pathAt, bool) {
	kind := yaml.ScalarNode
	switch tag {
	case "map":
		kind = yaml.MappingNode
	case "seq":
		kind = yaml.SequenceNode
	}
	for _, c := range candidates {
		if c.kind == kind && (kind != yaml.ScalarNode || c.value == value) {
			return c, true
		}
	}
	return pathAt{}, false
}
