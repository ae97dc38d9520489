package bedrock

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestParseEstimateMode(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]EstimateMode{"": EstimateTypical, "typical": EstimateTypical, "strict": EstimateStrict} {
		got, err := ParseEstimateMode(in)
		if err != nil || got != want {
			t.Errorf("ParseEstimateMode(%q) = %v, %v", in, got, err)
		}
		if in != "" && got.String() != in {
			t.Errorf("%v.String() = %q", got, got.String())
		}
	}
	for _, in := range []string{"Strict", "exact", " typical"} {
		if _, err := ParseEstimateMode(in); err == nil {
			t.Errorf("ParseEstimateMode(%q) accepted", in)
		}
	}
}

const (
	claude       = "anthropic.claude-3-5-haiku-20241022-v1:0"
	appProfile   = "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abcd1234efgh"
	messagesBody = `"messages":[{"role":"user","content":[{"type":"text","text":"Hello, \"max_tokens\": 99999"}]}]`
)

func TestEstimateRequestOutput(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		op    Operation
		model string
		body  string
		want  int64 // output; -1 means the default
	}{
		// Converse: inferenceConfig.maxTokens, whatever the model.
		{"converse", OpConverse, claude, `{` + messagesBody + `,"inferenceConfig":{"maxTokens":512,"temperature":0.5}}`, 512},
		{"converse stream", OpConverseStream, "meta.llama3-8b-instruct-v1:0", `{"inferenceConfig":{"maxTokens":100}}`, 100},
		{"converse ignores invoke fields", OpConverse, claude, `{"max_tokens":900,` + messagesBody + `}`, -1},
		{"converse no config", OpConverse, claude, `{` + messagesBody + `}`, -1},
		{"converse null", OpConverse, claude, `{"inferenceConfig":{"maxTokens":null}}`, -1},
		{"converse config not an object", OpConverse, claude, `{"inferenceConfig":"x"}`, -1},
		{"converse on embed model", OpConverse, "cohere.embed-english-v3", `{"inferenceConfig":{"maxTokens":7}}`, 7},
		// Anthropic.
		{"anthropic", OpInvokeModel, claude, `{"anthropic_version":"bedrock-2023-05-31","max_tokens":1024,` + messagesBody + `}`, 1024},
		{"anthropic profile", OpInvokeModelWithResponseStream, "us." + claude, `{"max_tokens":300}`, 300},
		{"anthropic legacy", OpInvokeModel, "anthropic.claude-v2:1", `{"prompt":"\n\nHuman: hi\n\nAssistant:","max_tokens_to_sample":200}`, 200},
		{"anthropic both, larger wins", OpInvokeModel, "anthropic.claude-v2:1", `{"max_tokens_to_sample":200,"max_tokens":50}`, 200},
		{"anthropic ignores other families", OpInvokeModel, claude, `{"max_gen_len":77,"textGenerationConfig":{"maxTokenCount":5}}`, -1},
		{"anthropic FM ARN", OpInvokeModel, "arn:aws:bedrock:us-east-1::foundation-model/" + claude, `{"max_tokens":64}`, 64},
		{"anthropic profile ARN", OpInvokeModel, "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us." + claude, `{"max_tokens":65}`, 65},
		{"duplicate key, last wins", OpInvokeModel, claude, `{"max_tokens":10,"max_tokens":20}`, 20},
		{"escaped key", OpInvokeModel, claude, `{"max\u005ftokens":33}`, 33},
		{"integral float", OpInvokeModel, claude, `{"max_tokens":1e3}`, 1000},
		// Amazon.
		{"titan text", OpInvokeModel, "amazon.titan-text-express-v1", `{"inputText":"hi","textGenerationConfig":{"maxTokenCount":800,"temperature":0}}`, 800},
		{"titan no config", OpInvokeModel, "amazon.titan-text-premier-v1:0", `{"inputText":"hi"}`, -1},
		{"titan ignores max_tokens", OpInvokeModel, "amazon.titan-text-lite-v1", `{"inputText":"hi","max_tokens":10}`, -1},
		{"titan embed", OpInvokeModel, "amazon.titan-embed-text-v2:0", `{"inputText":"hi","dimensions":512}`, 0},
		{"nova", OpInvokeModel, "amazon.nova-lite-v1:0", `{"schemaVersion":"messages-v1","messages":[],"inferenceConfig":{"max_new_tokens":1000}}`, 1000},
		{"nova profile camel", OpInvokeModelWithResponseStream, "us.amazon.nova-pro-v1:0", `{"inferenceConfig":{"maxTokens":700}}`, 700},
		{"nova both", OpInvokeModel, "amazon.nova-micro-v1:0", `{"inferenceConfig":{"maxTokens":700,"max_new_tokens":900}}`, 900},
		{"nova embed", OpInvokeModel, "amazon.nova-2-multimodal-embeddings-v1:0", `{"taskType":"SINGLE_EMBEDDING"}`, 0},
		{"amazon other", OpInvokeModel, "amazon.rerank-v1:0", `{"max_tokens":12}`, 12},
		// Meta, Mistral, Cohere, AI21.
		{"llama", OpInvokeModel, "meta.llama3-8b-instruct-v1:0", `{"prompt":"hi","max_gen_len":512,"temperature":0.5}`, 512},
		{"llama ignores max_tokens", OpInvokeModel, "meta.llama3-8b-instruct-v1:0", `{"prompt":"hi","max_tokens":512}`, -1},
		{"mistral", OpInvokeModel, "mistral.mistral-large-2402-v1:0", `{"prompt":"<s>[INST] hi [/INST]","max_tokens":400}`, 400},
		{"cohere command-r", OpInvokeModel, "cohere.command-r-plus-v1:0", `{"message":"hi","max_tokens":300}`, 300},
		{"cohere embed", OpInvokeModel, "cohere.embed-english-v3", `{"texts":["hi"],"input_type":"search_document"}`, 0},
		{"ai21 jamba", OpInvokeModel, "ai21.jamba-1-5-large-v1:0", `{"messages":[],"max_tokens":250}`, 250},
		{"ai21 jurassic", OpInvokeModel, "ai21.j2-ultra-v1", `{"prompt":"hi","maxTokens":200}`, 200},
		// OpenAI-style families.
		{"openai", OpInvokeModel, "openai.gpt-oss-120b-1:0", `{"messages":[],"max_completion_tokens":2000}`, 2000},
		{"deepseek", OpInvokeModel, "us.deepseek.r1-v1:0", `{"prompt":"hi","max_tokens":8000}`, 8000},
		{"other provider", OpInvokeModel, "writer.palmyra-x5-v1:0", `{"messages":[],"max_tokens":99}`, 99},
		{"other provider ignores max_gen_len", OpInvokeModel, "qwen.qwen3-32b-v1:0", `{"max_gen_len":99}`, -1},
		// Unknown family: every known field counts, the largest wins.
		{"app profile anthropic", OpInvokeModel, appProfile, `{"max_tokens":321}`, 321},
		{"app profile titan", OpInvokeModel, appProfile, `{"textGenerationConfig":{"maxTokenCount":123}}`, 123},
		{"app profile nova", OpInvokeModel, appProfile, `{"inferenceConfig":{"max_new_tokens":222}}`, 222},
		{"app profile llama", OpInvokeModel, appProfile, `{"max_gen_len":111}`, 111},
		{"app profile several", OpInvokeModel, appProfile, `{"max_gen_len":111,"max_tokens":5,"maxTokens":600}`, 600},
		{"app profile none", OpInvokeModel, appProfile, `{"prompt":"x"}`, -1},
		{"provisioned", OpInvokeModel, "arn:aws:bedrock:us-east-1:123456789012:provisioned-model/a1b2c3d4e5f6", `{"max_tokens":42}`, 42},
		{"invalid model ID", OpInvokeModel, "not a model", `{"max_tokens":42,"max_gen_len":43}`, 43},
		{"FM ARN of an entitlement", OpInvokeModel, "arn:aws:bedrock:us-east-1::foundation-model/my-llm", `{"max_gen_len":44}`, 44},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := EstimateRequest(tt.op, tt.model, []byte(tt.body), EstimateOptions{DefaultMaxOutput: 2048})
			if err != nil {
				t.Fatalf("EstimateRequest: %v", err)
			}
			want := tt.want
			if want < 0 {
				want = 2048
			}
			if got.Output != want {
				t.Errorf("Output = %d, want %d", got.Output, want)
			}
			if got.Input != int64((len(tt.body)+3)/4) {
				t.Errorf("Input = %d for %d bytes", got.Input, len(tt.body))
			}
		})
	}
}

func TestEstimateRequestInput(t *testing.T) {
	t.Parallel()
	for _, n := range []int{2, 3, 4, 5, 8, 1001} {
		body := []byte(`{"a":"` + strings.Repeat("x", n-2) + `"}`)
		n := int64(len(body))
		typ, err := EstimateRequest(OpConverse, claude, body, EstimateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		strict, err := EstimateRequest(OpConverse, claude, body, EstimateOptions{Mode: EstimateStrict, DefaultMaxOutput: 10})
		if err != nil {
			t.Fatal(err)
		}
		if typ.Input != (n+3)/4 || strict.Input != n {
			t.Errorf("%d bytes: typical %d, strict %d", n, typ.Input, strict.Input)
		}
		if typ.Output != DefaultMaxOutputTokens || strict.Output != 10 {
			t.Errorf("default outputs: %d, %d", typ.Output, strict.Output)
		}
		if strict.Total() != n+10 {
			t.Errorf("Total() = %d", strict.Total())
		}
	}
}

func TestEstimateRequestNonGenerating(t *testing.T) {
	t.Parallel()
	for _, op := range []Operation{OpCountTokens, OpApplyGuardrail, OpStartAsyncInvoke, OpGetAsyncInvoke, OpListAsyncInvokes, OpListFoundationModels, OpGetFoundationModel, OpUnknown} {
		got, err := EstimateRequest(op, claude, []byte("not json"), EstimateOptions{Mode: EstimateStrict})
		if err != nil || got != (Estimate{}) {
			t.Errorf("%v: %+v, %v", op, got, err)
		}
	}
	got, err := EstimateRequest(OpInvokeModelWithBidirectionalStream, "amazon.nova-sonic-v1:0", []byte("\x00\x00\x00\x10event stream"), EstimateOptions{DefaultMaxOutput: 77})
	if err != nil || got != (Estimate{Output: 77}) {
		t.Errorf("bidirectional: %+v, %v", got, err)
	}
}

func TestEstimateRequestRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		op    Operation
		model string
		body  string
		msg   string
	}{
		{"not JSON", OpInvokeModel, claude, `{"max_tokens":`, "not valid JSON"},
		{"empty body", OpConverse, claude, ``, "not valid JSON"},
		{"binary", OpInvokeModelWithResponseStream, claude, "\x89PNG", "not valid JSON"},
		{"trailing data", OpConverse, claude, `{} {}`, "not valid JSON"},
		{"array", OpInvokeModel, claude, `[1,2]`, "JSON object"},
		{"string", OpConverse, claude, `"hi"`, "JSON object"},
		{"negative", OpInvokeModel, claude, `{"max_tokens":-1}`, "max_tokens"},
		{"fraction", OpInvokeModel, claude, `{"max_tokens":1.5}`, "max_tokens"},
		{"string value", OpInvokeModel, claude, `{"max_tokens":"100"}`, "max_tokens"},
		{"bool value", OpInvokeModel, "meta.llama3-8b-instruct-v1:0", `{"max_gen_len":true}`, "max_gen_len"},
		{"huge", OpInvokeModel, claude, `{"max_tokens":1e300}`, "max_tokens"},
		{"converse negative", OpConverseStream, claude, `{"inferenceConfig":{"maxTokens":-5}}`, "inferenceConfig.maxTokens"},
		{"titan object", OpInvokeModel, "amazon.titan-text-express-v1", `{"textGenerationConfig":{"maxTokenCount":{}}}`, "textGenerationConfig.maxTokenCount"},
		{"nova fraction", OpInvokeModel, "amazon.nova-lite-v1:0", `{"inferenceConfig":{"max_new_tokens":0.5}}`, "inferenceConfig.max_new_tokens"},
		{"unknown family bad field", OpInvokeModel, appProfile, `{"max_tokens":10,"maxTokens":-2}`, "maxTokens"},
		{"embed still needs JSON", OpInvokeModel, "cohere.embed-english-v3", `{`, "not valid JSON"},
	}
	for _, tt := range tests {
		_, err := EstimateRequest(tt.op, tt.model, []byte(tt.body), EstimateOptions{})
		var be *Error
		if !errors.As(err, &be) || be.Type != "ValidationException" || be.Status != 400 || !strings.Contains(be.Message, tt.msg) {
			t.Errorf("%s: error %v, want ValidationException mentioning %q", tt.name, err, tt.msg)
		}
	}
}

func FuzzEstimateRequest(f *testing.F) {
	f.Add(uint8(OpInvokeModel), claude, []byte(`{"max_tokens":1024,"messages":[]}`), false)
	f.Add(uint8(OpConverse), claude, []byte(`{"inferenceConfig":{"maxTokens":5}}`), true)
	f.Add(uint8(OpInvokeModel), "amazon.titan-text-express-v1", []byte(`{"textGenerationConfig":{"maxTokenCount":1e2}}`), false)
	f.Add(uint8(OpInvokeModelWithResponseStream), appProfile, []byte(`{"inferenceConfig":{"max_new_tokens":3},"max_gen_len":4}`), true)
	f.Add(uint8(OpInvokeModel), "cohere.embed-english-v3", []byte(`{"texts":["\"}"]}`), false)
	f.Fuzz(func(t *testing.T, op uint8, model string, body []byte, strict bool) {
		opts := EstimateOptions{DefaultMaxOutput: 100}
		if strict {
			opts.Mode = EstimateStrict
		}
		o := Operation(op % uint8(opCount))
		est, err := EstimateRequest(o, model, body, opts)
		if err != nil {
			var be *Error
			if !errors.As(err, &be) || be.Type != "ValidationException" {
				t.Fatalf("error %#v is not a ValidationException", err)
			}
			if est != (Estimate{}) {
				t.Fatalf("estimate %+v with an error", est)
			}
			return
		}
		if est.Input < 0 || est.Output < 0 || est.Output > maxJSONCount || est.Total() < est.Input {
			t.Fatalf("estimate %+v", est)
		}
		if strict && o.Generates() && o != OpInvokeModelWithBidirectionalStream && est.Input != int64(len(body)) {
			t.Fatalf("strict input %d for %d bytes", est.Input, len(body))
		}
	})
}

func BenchmarkEstimateRequest(b *testing.B) {
	prompt := strings.Repeat(`{"role":"user","content":[{"type":"text","text":"Summarise the following ticket, with \"quotes\" and escapes \\n included. "}]},`, 100)
	bodies := []struct {
		name  string
		op    Operation
		model string
		body  []byte
	}{
		{"anthropic-16KiB", OpInvokeModelWithResponseStream, claude, []byte(`{"anthropic_version":"bedrock-2023-05-31","messages":[` + prompt + `{"role":"user","content":"go"}],"max_tokens":1024}`)},
		{"converse-16KiB", OpConverseStream, claude, []byte(`{"messages":[` + prompt + `{"role":"user","content":[{"text":"go"}]}],"inferenceConfig":{"maxTokens":1024}}`)},
		{"titan-small", OpInvokeModel, "amazon.titan-text-express-v1", []byte(`{"inputText":"Hello there","textGenerationConfig":{"maxTokenCount":512}}`)},
	}
	for _, bb := range bodies {
		b.Run(bb.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bb.body)))
			for b.Loop() {
				if _, err := EstimateRequest(bb.op, bb.model, bb.body, EstimateOptions{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkEstimateBaselineUnmarshal is the obvious alternative to the walker,
// decoding into a tiny struct, kept for comparison with BenchmarkEstimateRequest.
func BenchmarkEstimateBaselineUnmarshal(b *testing.B) {
	prompt := strings.Repeat(`{"role":"user","content":[{"type":"text","text":"Summarise the following ticket, with \"quotes\" and escapes \\n included. "}]},`, 100)
	body := []byte(`{"anthropic_version":"bedrock-2023-05-31","messages":[` + prompt + `{"role":"user","content":"go"}],"max_tokens":1024}`)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		var v struct {
			MaxTokens *json.Number `json:"max_tokens"`
		}
		if err := json.Unmarshal(body, &v); err != nil || v.MaxTokens == nil {
			b.Fatal(err)
		}
	}
}
