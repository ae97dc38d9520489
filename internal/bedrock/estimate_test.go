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
		// Strict reserves the model's maximum output, never the default guess.
		if typ.Output != DefaultMaxOutputTokens || strict.Output != 8192 {
			t.Errorf("outputs without a maximum: typical %d, strict %d", typ.Output, strict.Output)
		}
		if strict.Total() != n+8192 {
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

// TestEstimateStrictOutput: strict mode reserves the request's own maximum,
// else the model's maximum output from the table, else refuses naming the
// field to set; it never falls back on the default guess.
func TestEstimateStrictOutput(t *testing.T) {
	t.Parallel()
	table, err := NewMaxOutputTable(map[string]int64{"amazon.nova-sonic-v1:0": 1024, appProfile: 2000})
	if err != nil {
		t.Fatal(err)
	}
	const bidiBody = "\x00\x00\x00\x10event stream"
	tests := []struct {
		name    string
		op      Operation
		model   string
		body    string
		table   *MaxOutputTable // nil: the built-in table
		want    int64
		wantErr string // part of the ValidationException's message
	}{
		{name: "converse names its maximum", op: OpConverse, model: claude, body: `{"inferenceConfig":{"maxTokens":300}}`, want: 300},
		{name: "converse maximum above the model's", op: OpConverse, model: claude, body: `{"inferenceConfig":{"maxTokens":100000}}`, want: 100000},
		{name: "converse without maximum: model's", op: OpConverse, model: "anthropic.claude-sonnet-4-20250514-v1:0", body: `{}`, want: 64000},
		{name: "converse on a profile", op: OpConverseStream, model: "eu.anthropic.claude-3-7-sonnet-20250219-v1:0", body: `{}`, want: 128000},
		{name: "converse unknown model", op: OpConverse, model: "writer.palmyra-x5-v1:0", body: `{}`, wantErr: "(inferenceConfig.maxTokens)"},
		{name: "anthropic invoke without maximum", op: OpInvokeModel, model: "us." + claude, body: `{"messages":[]}`, want: 8192},
		{name: "titan without maximum", op: OpInvokeModel, model: "amazon.titan-text-express-v1", body: `{"inputText":"hi"}`, want: 8192},
		{name: "nova 300k variant", op: OpInvokeModelWithResponseStream, model: "amazon.nova-pro-v1:0:300k", body: `{}`, want: 10000},
		{name: "llama FM ARN", op: OpInvokeModel, model: "arn:aws:bedrock:us-west-2::foundation-model/meta.llama3-1-70b-instruct-v1:0", body: `{"prompt":"hi"}`, want: 8192},
		{name: "unknown llama names its field", op: OpInvokeModel, model: "meta.llama4-maverick-17b-instruct-v1:0", body: `{"prompt":"hi","max_tokens":5}`, wantErr: "(max_gen_len)"},
		{name: "unknown anthropic names both fields", op: OpInvokeModel, model: "anthropic.claude-v2:1", body: `{}`, wantErr: "(max_tokens or max_tokens_to_sample)"},
		{name: "app profile refused", op: OpInvokeModel, model: appProfile, body: `{}`, wantErr: "max_tokens, max_tokens_to_sample, max_completion_tokens, max_gen_len"},
		{name: "app profile in the operator's table", op: OpInvokeModel, model: appProfile, body: `{}`, table: table, want: 2000},
		{name: "app profile with a maximum", op: OpInvokeModel, model: appProfile, body: `{"max_gen_len":111}`, want: 111},
		{name: "embedding needs none", op: OpInvokeModel, model: "cohere.embed-english-v3", body: `{"texts":["hi"]}`, want: 0},
		{name: "bidirectional not in the table", op: OpInvokeModelWithBidirectionalStream, model: "amazon.nova-sonic-v1:0", body: bidiBody, wantErr: "--model-max-output-file"},
		{name: "bidirectional in the table", op: OpInvokeModelWithBidirectionalStream, model: "amazon.nova-sonic-v1:0", body: bidiBody, table: table, want: 1024},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := EstimateRequest(tt.op, tt.model, []byte(tt.body), EstimateOptions{Mode: EstimateStrict, DefaultMaxOutput: 4096, MaxOutput: tt.table})
			if tt.wantErr != "" {
				var be *Error
				if !errors.As(err, &be) || be.Type != "ValidationException" || !strings.Contains(be.Message, tt.wantErr) || !strings.Contains(be.Message, "strict") {
					t.Fatalf("got %+v, %v; want a ValidationException about strict mode naming %q", got, err, tt.wantErr)
				}
				if strings.Contains(be.Message, tt.model) {
					t.Errorf("message %q names the upstream model", be.Message)
				}
				return
			}
			if err != nil {
				t.Fatalf("EstimateRequest: %v", err)
			}
			if got.Output != tt.want {
				t.Errorf("Output = %d, want %d", got.Output, tt.want)
			}
		})
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
