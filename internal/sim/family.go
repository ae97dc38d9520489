package sim

import (
	"encoding/json"
	"strings"
)

// family is a model family's native InvokeModel request and response shape.
type family uint8

const (
	famGeneric   family = iota // {"outputs":[{"text"}]}: Mistral and anything unknown
	famAnthropic               // Anthropic messages API
	famTitanText               // Amazon Titan text
	famEmbed                   // Titan and Cohere embeddings
	famNova                    // Amazon Nova
	famLlama                   // Meta Llama
)

// familyOf picks the family from the model ID and, for IDs that do not name a model
// (application inference profiles, provisioned throughput), from the request body.
func familyOf(modelID string, doc map[string]any) family {
	id := strings.ToLower(modelID)
	switch {
	case strings.Contains(id, "embed"):
		return famEmbed
	case strings.Contains(id, "anthropic."):
		return famAnthropic
	case strings.Contains(id, "amazon.nova"):
		return famNova
	case strings.Contains(id, "amazon.titan"):
		return famTitanText
	case strings.Contains(id, "meta.llama"):
		return famLlama
	case strings.Contains(id, "mistral.") || strings.Contains(id, "cohere.") || strings.Contains(id, "ai21."):
		return famGeneric
	}
	if doc == nil {
		return famGeneric
	}
	has := func(k string) bool { _, ok := doc[k]; return ok }
	switch {
	case has("anthropic_version"):
		return famAnthropic
	case has("texts"):
		return famEmbed
	case has("inputText"):
		if has("textGenerationConfig") {
			return famTitanText
		}
		return famEmbed
	case has("schemaVersion"), has("messages") && has("inferenceConfig"):
		return famNova
	case has("messages"):
		return famAnthropic
	case has("max_gen_len"):
		return famLlama
	}
	return famGeneric
}

// generation is the simulated result of one generating call.
type generation struct {
	fam        family
	modelID    string
	requestID  string
	input      int64
	output     int64
	cacheRead  int64
	cacheWrite int64
	capped     bool // the request's maximum cut the output short
}

func (g *generation) text() string { return generatedText(int(g.output)) }

// metrics is Bedrock's `amazon-bedrock-invocationMetrics` object.
type metrics struct {
	InputTokenCount           int64 `json:"inputTokenCount"`
	OutputTokenCount          int64 `json:"outputTokenCount"`
	InvocationLatency         int64 `json:"invocationLatency"`
	FirstByteLatency          int64 `json:"firstByteLatency"`
	CacheReadInputTokenCount  int64 `json:"cacheReadInputTokenCount,omitempty"`
	CacheWriteInputTokenCount int64 `json:"cacheWriteInputTokenCount,omitempty"`
}

func (g *generation) metrics(latencyMs, firstByteMs int64) *metrics {
	return &metrics{
		InputTokenCount: g.input, OutputTokenCount: g.output,
		InvocationLatency: latencyMs, FirstByteLatency: firstByteMs,
		CacheReadInputTokenCount: g.cacheRead, CacheWriteInputTokenCount: g.cacheWrite,
	}
}

// stopReason returns the family's word for a natural end or a cut at the cap.
func (g *generation) stopReason() string {
	switch g.fam {
	case famTitanText:
		if g.capped {
			return "LENGTH"
		}
		return "FINISH"
	case famLlama, famGeneric:
		if g.capped {
			return "length"
		}
		return "stop"
	}
	if g.capped {
		return "max_tokens"
	}
	return "end_turn"
}

type textBlock struct {
	Type string `json:"type,omitempty"`
	Text string `json:"text"`
}

type anthropicUsage struct {
	InputTokens              int64 `json:"input_tokens"`
	CacheCreationInputTokens int64 `json:"cache_creation_input_tokens,omitempty"`
	CacheReadInputTokens     int64 `json:"cache_read_input_tokens,omitempty"`
	OutputTokens             int64 `json:"output_tokens"`
}

type anthropicMessage struct {
	ID           string         `json:"id"`
	Type         string         `json:"type"`
	Role         string         `json:"role"`
	Model        string         `json:"model"`
	Content      []textBlock    `json:"content"`
	StopReason   *string        `json:"stop_reason"`
	StopSequence *string        `json:"stop_sequence"`
	Usage        anthropicUsage `json:"usage"`
}

func (g *generation) anthropicMessage(content []textBlock, stop *string, output int64) anthropicMessage {
	return anthropicMessage{
		ID: "msg_bdrk_" + g.requestID, Type: "message", Role: "assistant", Model: g.modelID,
		Content: content, StopReason: stop,
		Usage: anthropicUsage{
			InputTokens: g.input, CacheCreationInputTokens: g.cacheWrite,
			CacheReadInputTokens: g.cacheRead, OutputTokens: output,
		},
	}
}

// novaUsage is Nova's usage object in InvokeModel responses.
type novaUsage struct {
	InputTokens               int64 `json:"inputTokens"`
	OutputTokens              int64 `json:"outputTokens"`
	TotalTokens               int64 `json:"totalTokens"`
	CacheReadInputTokenCount  int64 `json:"cacheReadInputTokenCount,omitempty"`
	CacheWriteInputTokenCount int64 `json:"cacheWriteInputTokenCount,omitempty"`
}

func (g *generation) novaUsage() novaUsage {
	return novaUsage{
		InputTokens: g.input, OutputTokens: g.output, TotalTokens: g.input + g.output,
		CacheReadInputTokenCount: g.cacheRead, CacheWriteInputTokenCount: g.cacheWrite,
	}
}

type message struct {
	Role    string      `json:"role"`
	Content []textBlock `json:"content"`
}

// invokeBody is the InvokeModel response body in the family's native shape.
func (g *generation) invokeBody() []byte {
	var v any
	text := g.text()
	stop := g.stopReason()
	switch g.fam {
	case famAnthropic:
		v = g.anthropicMessage([]textBlock{{Type: "text", Text: text}}, &stop, g.output)
	case famTitanText:
		type result struct {
			TokenCount       int64  `json:"tokenCount"`
			OutputText       string `json:"outputText"`
			CompletionReason string `json:"completionReason"`
		}
		v = struct {
			InputTextTokenCount int64    `json:"inputTextTokenCount"`
			Results             []result `json:"results"`
		}{g.input, []result{{g.output, text, stop}}}
	case famEmbed:
		v = struct {
			Embedding           []float64 `json:"embedding"`
			InputTextTokenCount int64     `json:"inputTextTokenCount"`
		}{embedding(g.input), g.input}
	case famNova:
		v = struct {
			Output struct {
				Message message `json:"message"`
			} `json:"output"`
			StopReason string    `json:"stopReason"`
			Usage      novaUsage `json:"usage"`
		}{
			Output: struct {
				Message message `json:"message"`
			}{message{Role: "assistant", Content: []textBlock{{Text: text}}}},
			StopReason: stop, Usage: g.novaUsage(),
		}
	case famLlama:
		v = struct {
			Generation           string `json:"generation"`
			PromptTokenCount     int64  `json:"prompt_token_count"`
			GenerationTokenCount int64  `json:"generation_token_count"`
			StopReason           string `json:"stop_reason"`
		}{text, g.input, g.output, stop}
	default:
		v = genericOutputs{Outputs: []genericOutput{{Text: text, StopReason: &stop}}}
	}
	b, _ := json.Marshal(v)
	return b
}

type genericOutput struct {
	Text       string  `json:"text"`
	StopReason *string `json:"stop_reason"`
}

type genericOutputs struct {
	Outputs []genericOutput `json:"outputs"`
	Metrics *metrics        `json:"amazon-bedrock-invocationMetrics,omitempty"`
}

// embedding is a small deterministic vector.
func embedding(seed int64) []float64 {
	v := make([]float64, 8)
	for i := range v {
		v[i] = float64((seed*31+int64(i)*17)%100) / 100
	}
	return v
}
