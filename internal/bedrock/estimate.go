package bedrock

import (
	"fmt"
	"strings"
)

// EstimateMode chooses how the input side of a request is estimated before the
// call (see the README, Quotas).
type EstimateMode uint8

const (
	// EstimateTypical counts ceil(body bytes / 4) input tokens: close to real
	// tokenizers for text, so caps may be overshot by one request's error.
	EstimateTypical EstimateMode = iota
	// EstimateStrict counts one token per body byte: a true upper bound, so the
	// settled total never exceeds a cap. The output side is the request's own
	// maximum, else the model's maximum output (MaxOutputTable); a request
	// that names none for a model not in the table is refused.
	EstimateStrict
)

// String returns the mode's configuration name.
func (m EstimateMode) String() string {
	if m == EstimateStrict {
		return "strict"
	}
	return "typical"
}

// ParseEstimateMode parses a configuration value: "typical" (also ""), "strict".
func ParseEstimateMode(s string) (EstimateMode, error) {
	switch s {
	case "", "typical":
		return EstimateTypical, nil
	case "strict":
		return EstimateStrict, nil
	}
	return 0, fmt.Errorf("unknown estimate mode %q (want typical or strict)", s)
}

// DefaultMaxOutputTokens is the output estimate when the request names no
// maximum and EstimateOptions.DefaultMaxOutput is zero.
const DefaultMaxOutputTokens = 4096

// EstimateOptions configures EstimateRequest.
type EstimateOptions struct {
	Mode EstimateMode
	// DefaultMaxOutput is the output estimate of a request that names no
	// maximum; zero (or negative) means DefaultMaxOutputTokens. Strict mode
	// never uses it: a guess could be exceeded.
	DefaultMaxOutput int64
	// MaxOutput gives strict mode the model's maximum output for a request
	// that names none; nil means the built-in table.
	MaxOutput *MaxOutputTable
}

// Estimate is the token count reserved before a call.
type Estimate struct {
	Input, Output int64
}

// Total is Input plus Output.
func (e Estimate) Total() int64 { return e.Input + e.Output }

// The request fields that name a maximum output, by index into outputFields.
const (
	iMaxTokens             = iota // max_tokens
	iMaxTokensToSample            // max_tokens_to_sample (legacy Anthropic)
	iMaxCompletionTokens          // max_completion_tokens
	iMaxGenLen                    // max_gen_len (Llama)
	iMaxTokensCamel               // maxTokens (Jurassic)
	iTextGenMaxTokenCount         // textGenerationConfig.maxTokenCount (Titan)
	iInferenceMaxNewTokens        // inferenceConfig.max_new_tokens (Nova)
	iInferenceMaxTokens           // inferenceConfig.maxTokens (Converse, Nova)
	outputFieldCount
)

// Masks of those fields.
const (
	fMaxTokens             = 1 << iMaxTokens
	fMaxTokensToSample     = 1 << iMaxTokensToSample
	fMaxCompletionTokens   = 1 << iMaxCompletionTokens
	fMaxGenLen             = 1 << iMaxGenLen
	fMaxTokensCamel        = 1 << iMaxTokensCamel
	fTextGenMaxTokenCount  = 1 << iTextGenMaxTokenCount
	fInferenceMaxNewTokens = 1 << iInferenceMaxNewTokens
	fInferenceMaxTokens    = 1 << iInferenceMaxTokens
	fAll                   = 1<<outputFieldCount - 1
)

var outputFieldNames = [outputFieldCount]string{
	"max_tokens", "max_tokens_to_sample", "max_completion_tokens", "max_gen_len", "maxTokens",
	"textGenerationConfig.maxTokenCount", "inferenceConfig.max_new_tokens", "inferenceConfig.maxTokens",
}

// outputFields holds the raw JSON values of the fields found, by bit index.
type outputFields [outputFieldCount][]byte

// EstimateRequest estimates the tokens a request may consume: input from the
// body size (per opts.Mode), output from the maximum the request asks for, read
// from the field its model family uses (when absent: opts.DefaultMaxOutput, or
// in strict mode the model's maximum output from opts.MaxOutput; zero for
// embedding models). Operations that do not generate tokens estimate zero and
// need no JSON. For InvokeModelWithBidirectionalStream the body is an event
// stream whose input is not known up front and that names no maximum before
// it starts, so only the output is estimated: the default, or in strict mode
// the model's maximum output.
//
// The error is a *Error (ValidationException) when the body is not a JSON
// object, a maximum is not a non-negative integer, or strict mode finds
// neither the request's maximum nor the model's; the proxy calls this before
// reserving anything.
func EstimateRequest(op Operation, upstreamModel string, body []byte, opts EstimateOptions) (Estimate, error) {
	est, _, err := InspectRequest(op, upstreamModel, body, opts)
	return est, err
}

// InspectRequest is EstimateRequest that also reads, in the same walk over
// the body, the service tier, latency mode and guardrail a Converse or
// ConverseStream body chooses (serviceTier.type, performanceConfig.latency,
// guardrailConfig.guardrailIdentifier). Other operations choose them in
// headers (HeaderOptions) or, for ApplyGuardrail, in the path. A value that
// is not Bedrock's is a ValidationException.
func InspectRequest(op Operation, upstreamModel string, body []byte, opts EstimateOptions) (Estimate, RequestOptions, error) {
	if !op.Generates() {
		return Estimate{}, RequestOptions{}, nil
	}
	defOut := opts.DefaultMaxOutput
	if defOut <= 0 {
		defOut = DefaultMaxOutputTokens
	}
	if op == OpInvokeModelWithBidirectionalStream {
		if opts.Mode != EstimateStrict {
			return Estimate{Output: defOut}, RequestOptions{}, nil
		}
		out, ok := opts.MaxOutput.Lookup(upstreamModel)
		if !ok {
			return Estimate{}, RequestOptions{}, Validation("This entitlement uses strict estimates, and a bidirectional stream cannot name its maximum output before it starts; " +
				"the gateway has no maximum output for this model. Ask the gateway's operator to add it (--model-max-output-file).")
		}
		return Estimate{Output: out}, RequestOptions{}, nil
	}

	var est Estimate
	if opts.Mode == EstimateStrict {
		est.Input = int64(len(body))
	} else {
		est.Input = (int64(len(body)) + 3) / 4
	}

	if !validJSON(body) {
		return Estimate{}, RequestOptions{}, Validation("The request body is not valid JSON.")
	}
	var f requestFields
	if err := eachMember(body, f.collect); err != nil {
		return Estimate{}, RequestOptions{}, Validation("The request body must be a JSON object.")
	}
	var ro RequestOptions
	mask := fInferenceMaxTokens // Converse, ConverseStream
	if op == OpInvokeModel || op == OpInvokeModelWithResponseStream {
		m, err := ParseModelID(upstreamModel)
		if err != nil {
			m = ModelID{}
		}
		if isEmbeddingModel(m) {
			return est, RequestOptions{}, nil
		}
		mask = familyFields(m)
	} else {
		var err error
		if ro, err = bodyOptions(f.serviceTier, f.performanceConfig, f.guardrailConfig); err != nil {
			return Estimate{}, RequestOptions{}, err
		}
	}
	out, found, err := f.out.max(mask)
	if err != nil {
		return Estimate{}, RequestOptions{}, err
	}
	switch {
	case found:
	case opts.Mode != EstimateStrict:
		out = defOut
	default:
		// A default guess could be exceeded (a model may answer far more than
		// 4,096 tokens), which strict mode promises never happens.
		n, ok := opts.MaxOutput.Lookup(upstreamModel)
		if !ok {
			return Estimate{}, RequestOptions{}, Validation("This entitlement uses strict estimates: the request must name its maximum output (" +
				fieldList(mask) + "), since the gateway has no maximum output for this model.")
		}
		out = n
	}
	est.Output = out
	return est, ro, nil
}

// requestFields holds the raw members of a request body the gateway reads.
type requestFields struct {
	out                                             outputFields
	serviceTier, performanceConfig, guardrailConfig []byte
}

func (f *requestFields) collect(k, v []byte) {
	switch string(k) {
	case "serviceTier":
		f.serviceTier = v
	case "performanceConfig":
		f.performanceConfig = v
	case "guardrailConfig":
		f.guardrailConfig = v
	default:
		f.out.collect(k, v)
	}
}

// fieldList names the fields in mask, for a message: "a", "a or b", "a, b or c".
func fieldList(mask int) string {
	var names []string
	for i := range outputFieldCount {
		if mask&(1<<i) != 0 {
			names = append(names, outputFieldNames[i])
		}
	}
	if len(names) <= 1 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// collect records the fields of a top-level member that can name a maximum.
func (f *outputFields) collect(k, v []byte) {
	switch string(k) {
	case "max_tokens":
		f[iMaxTokens] = v
	case "max_tokens_to_sample":
		f[iMaxTokensToSample] = v
	case "max_completion_tokens":
		f[iMaxCompletionTokens] = v
	case "max_gen_len":
		f[iMaxGenLen] = v
	case "maxTokens":
		f[iMaxTokensCamel] = v
	case "textGenerationConfig":
		_ = eachMember(v, func(k, v []byte) {
			if string(k) == "maxTokenCount" {
				f[iTextGenMaxTokenCount] = v
			}
		})
	case "inferenceConfig":
		_ = eachMember(v, func(k, v []byte) {
			switch string(k) {
			case "max_new_tokens":
				f[iInferenceMaxNewTokens] = v
			case "maxTokens":
				f[iInferenceMaxTokens] = v
			}
		})
	}
}

// max returns the largest of the fields in mask that are present and not null.
func (f *outputFields) max(mask int) (out int64, found bool, err error) {
	for i := range outputFieldCount {
		v := f[i]
		if mask&(1<<i) == 0 || v == nil || string(v) == "null" {
			continue
		}
		n, cerr := jsonCount(v)
		if cerr != nil {
			return 0, false, Validation("The request field " + outputFieldNames[i] + " must be a non-negative integer.")
		}
		out, found = max(out, n), true
	}
	return out, found, nil
}

func isEmbeddingModel(m ModelID) bool {
	name := m.BaseModel
	if name == "" {
		name = m.Resource
	}
	return strings.Contains(name, "embed")
}

// familyFields returns the fields that name InvokeModel's maximum output for the
// model's family; when the family is unknown (an application inference profile,
// a provisioned or custom model) every known field counts.
func familyFields(m ModelID) int {
	base := m.BaseModel
	switch m.Provider() {
	case "":
		return fAll
	case "anthropic":
		return fMaxTokens | fMaxTokensToSample
	case "amazon":
		switch {
		case strings.Contains(base, ".titan-"):
			return fTextGenMaxTokenCount
		case strings.Contains(base, ".nova-"):
			return fInferenceMaxNewTokens | fInferenceMaxTokens
		}
		return fAll
	case "meta":
		return fMaxGenLen
	case "mistral", "cohere":
		return fMaxTokens
	case "ai21":
		return fMaxTokens | fMaxTokensCamel
	}
	// OpenAI, DeepSeek and most newer families follow the OpenAI names.
	return fMaxTokens | fMaxCompletionTokens
}
