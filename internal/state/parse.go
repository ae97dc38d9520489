package state

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"gopkg.in/yaml.v3"
)

// Parse decodes a state document. It is YAML, so JSON is accepted too. Fields the
// state does not know are errors: a misspelt limit must not silently mean "no
// limit". Parse neither normalizes nor validates.
func Parse(data []byte) (*State, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var s State
	if err := dec.Decode(&s); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("parsing state: the document is empty")
		}
		return nil, fmt.Errorf("parsing state: %w", err)
	}
	// A second document would be ignored silently; refuse it instead.
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == nil:
		return nil, errors.New("parsing state: more than one YAML document")
	case !errors.Is(err, io.EOF):
		return nil, fmt.Errorf("parsing state: %w", err)
	}
	return &s, nil
}

// LoadFile reads and parses a state file.
func LoadFile(path string) (*State, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading state file: %w", err)
	}
	s, err := Parse(data)
	if err != nil {
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
