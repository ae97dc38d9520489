package state

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Parse decodes a state document. It is YAML, so JSON is accepted too. Fields the
// state does not know are errors: a misspelt limit must not silently mean "no
// limit". Every problem is reported at once, as a *ParseError naming the line,
// column and key path of each (with a suggestion for a misspelt key). Parse
// neither normalizes nor validates.
func Parse(data []byte) (*State, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &ParseError{Problems: []Problem{{Message: "the document is empty"}}}
		}
		return nil, syntaxError(err)
	}
	// A second document would be ignored silently; refuse it instead.
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == nil:
		return nil, &ParseError{Problems: []Problem{{Line: extra.Line, Column: extra.Column, Message: "more than one YAML document"}}}
	case !errors.Is(err, io.EOF):
		return nil, syntaxError(err)
	}
	var problems []Problem
	unknownKeys(&doc, reflect.TypeFor[State](), "", &problems)
	var s State
	if err := doc.Decode(&s); err != nil {
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			return nil, syntaxError(err)
		}
		paths := map[int][]pathAt{}
		valuePaths(&doc, "", paths)
		problems = append(problems, typeProblems(te, paths)...)
	}
	if len(problems) > 0 {
		slices.SortStableFunc(problems, func(a, b Problem) int { return cmp.Compare(a.Line, b.Line) })
		return nil, &ParseError{Problems: problems}
	}
	return &s, nil
}

// syntaxLine matches yaml.v3's "yaml: line N: message".
var syntaxLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

func syntaxError(err error) error {
	msg := err.Error()
	if m := syntaxLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &ParseError{Problems: []Problem{{Line: line, Column: 1, Message: m[2]}}}
	}
	return &ParseError{Problems: []Problem{{Message: strings.TrimPrefix(msg, "yaml: ")}}}
}

// LoadFile reads and parses a state file; problems name the file.
func LoadFile(path string) (*State, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading state file: %w", err)
	}
	s, err := Parse(data)
	if err != nil {
		var pe *ParseError
		if errors.As(err, &pe) {
			pe.File = path
			return nil, pe
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// Marshal encodes s as YAML that Parse reads back. Field order follows the types
// and list order is kept, so the same state always gives the same bytes.
func Marshal(s *State) ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(s); err != nil {
		return nil, fmt.Errorf("encoding state: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("encoding state: %w", err)
	}
	return buf.Bytes(), nil
}
