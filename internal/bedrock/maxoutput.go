package bedrock

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// builtinMaxOutput is the largest number of output tokens each model can
// produce in one call, whatever the request asks for. The strict estimate
// reserves it for a request that names no maximum, so it must never be below
// the real limit: where sources differ, the larger figure is used.
//
// Sources, as of the end of 2025: Anthropic's model overview (max output per
// model; Claude 3.7 Sonnet's 128K is its extended-output beta, which a member
// can turn on from the request body, so it is the bound), the Amazon Bedrock
// model cards and inference-parameter pages (Nova, Titan, Mistral, Cohere
// Command R, whose max_tokens is at most 4,000). For Meta Llama, Bedrock
// documents max_gen_len up to 2,048; the table holds 8,192 (the Llama 3
// context length) so that the bound survives Bedrock raising that limit.
// Operators correct or extend the table with --model-max-output-file.
var builtinMaxOutput = map[string]int64{
	// Anthropic Claude 3, 3.5, 3.7, 4, 4.1 and 4.5.
	"anthropic.claude-3-haiku-20240307-v1:0":    4096,
	"anthropic.claude-3-sonnet-20240229-v1:0":   4096,
	"anthropic.claude-3-opus-20240229-v1:0":     4096,
	"anthropic.claude-3-5-sonnet-20240620-v1:0": 8192,
	"anthropic.claude-3-5-sonnet-20241022-v2:0": 8192,
	"anthropic.claude-3-5-haiku-20241022-v1:0":  8192,
	"anthropic.claude-3-7-sonnet-20250219-v1:0": 128000,
	"anthropic.claude-sonnet-4-20250514-v1:0":   64000,
	"anthropic.claude-opus-4-20250514-v1:0":     32000,
	"anthropic.claude-opus-4-1-20250805-v1:0":   32000,
	"anthropic.claude-sonnet-4-5-20250929-v1:0": 64000,
	"anthropic.claude-haiku-4-5-20251001-v1:0":  64000,
	"anthropic.claude-opus-4-5-20251101-v1:0":   64000,
	// Amazon Nova and Titan Text.
	"amazon.nova-micro-v1:0":         10000,
	"amazon.nova-lite-v1:0":          10000,
	"amazon.nova-pro-v1:0":           10000,
	"amazon.nova-premier-v1:0":       32000,
	"amazon.titan-text-lite-v1":      4096,
	"amazon.titan-text-express-v1":   8192,
	"amazon.titan-text-premier-v1:0": 3072,
	// Meta Llama 3.x (see above).
	"meta.llama3-8b-instruct-v1:0":     8192,
	"meta.llama3-70b-instruct-v1:0":    8192,
	"meta.llama3-1-8b-instruct-v1:0":   8192,
	"meta.llama3-1-70b-instruct-v1:0":  8192,
	"meta.llama3-1-405b-instruct-v1:0": 8192,
	"meta.llama3-2-1b-instruct-v1:0":   8192,
	"meta.llama3-2-3b-instruct-v1:0":   8192,
	"meta.llama3-2-11b-instruct-v1:0":  8192,
	"meta.llama3-2-90b-instruct-v1:0":  8192,
	"meta.llama3-3-70b-instruct-v1:0":  8192,
	// Mistral.
	"mistral.mistral-7b-instruct-v0:2":   8192,
	"mistral.mixtral-8x7b-instruct-v0:1": 4096,
	"mistral.mistral-small-2402-v1:0":    8192,
	"mistral.mistral-large-2402-v1:0":    8192,
	"mistral.mistral-large-2407-v1:0":    8192,
	// Cohere Command R.
	"cohere.command-r-v1:0":      4000,
	"cohere.command-r-plus-v1:0": 4000,
}

// MaxOutputTable maps models to the most output tokens one call can produce.
// It is immutable once built; nil means the built-in table.
type MaxOutputTable struct {
	byModel map[string]int64
}

// DefaultMaxOutputTable returns the table shipped with the gateway.
func DefaultMaxOutputTable() *MaxOutputTable {
	return &MaxOutputTable{byModel: builtinMaxOutput}
}

// NewMaxOutputTable returns the built-in table with entries added or
// replaced. Each key must be a model identifier Bedrock accepts (a base model
// ID, with or without its ":N" version; an inference profile ID; a model ARN)
// and each value positive.
func NewMaxOutputTable(entries map[string]int64) (*MaxOutputTable, error) {
	var errs []error
	for _, m := range slices.Sorted(maps.Keys(entries)) {
		if _, err := ParseModelID(m); err != nil {
			errs = append(errs, fmt.Errorf("model %q: %w", m, err))
		}
		if entries[m] <= 0 {
			errs = append(errs, fmt.Errorf("model %q: the maximum output must be a positive number of tokens", m))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	t := &MaxOutputTable{byModel: maps.Clone(builtinMaxOutput)}
	maps.Copy(t.byModel, entries)
	return t, nil
}

// ParseMaxOutput reads a YAML mapping of model identifier to tokens, such as
//
//	anthropic.claude-3-7-sonnet-20250219-v1:0: 64000
//	arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abcd1234: 8192
//
// and returns the built-in table with those entries added or replaced.
func ParseMaxOutput(r io.Reader) (*MaxOutputTable, error) {
	var entries map[string]int64
	if err := yaml.NewDecoder(r).Decode(&entries); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("parsing model maximum outputs (want a mapping of model ID to tokens): %w", err)
	}
	return NewMaxOutputTable(entries)
}

// LoadMaxOutput reads a file in ParseMaxOutput's format; an empty path gives
// the built-in table.
func LoadMaxOutput(path string) (*MaxOutputTable, error) {
	if path == "" {
		return DefaultMaxOutputTable(), nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading model maximum outputs: %w", err)
	}
	t, err := ParseMaxOutput(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

// Lookup returns the maximum output of an upstream model: an entry for the
// identifier exactly as given wins; otherwise an ARN is looked up by the model
// it names and a cross-region inference profile (us., eu., apac., ...) by its
// base model, each also without a context-window suffix (":200k") and then
// without its ":N" version, so "us.anthropic.claude-3-haiku-20240307-v1:0:200k"
// finds "anthropic.claude-3-haiku-20240307-v1:0".
func (t *MaxOutputTable) Lookup(model string) (int64, bool) {
	byModel := builtinMaxOutput
	if t != nil {
		byModel = t.byModel
	}
	if n, ok := byModel[model]; ok {
		return n, true
	}
	id, err := ParseModelID(model)
	if err != nil {
		return 0, false
	}
	for _, name := range []string{id.Resource, id.BaseModel} {
		if name == "" {
			continue
		}
		for _, candidate := range versionsOf(name) {
			if n, ok := byModel[candidate]; ok {
				return n, true
			}
		}
	}
	return 0, false
}

// versionsOf lists name, then name without a context-window suffix
// ("-v1:0:200k" → "-v1:0"), then without its minor version ("-v1:0" → "-v1").
func versionsOf(name string) []string {
	out := []string{name}
	first := strings.IndexByte(name, ':')
	if first < 0 {
		return out
	}
	if second := strings.IndexByte(name[first+1:], ':'); second >= 0 {
		name = name[:first+1+second]
		out = append(out, name)
	}
	return append(out, name[:first])
}
