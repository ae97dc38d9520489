package sim

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/bedrock-gateway/gateway/internal/testutil/sdktest"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/bedrock-gateway/gateway/internal/bedrock"
	"github.com/bedrock-gateway/gateway/internal/testutil/leakcheck"
)

// TestMain fails the run when a simulator handler is still running after every
// test finished: a stream that ignored its client going away.
func TestMain(m *testing.M) { leakcheck.Main(m) }

func newServer(t *testing.T, opts Options) (*Simulator, *httptest.Server) {
	t.Helper()
	s := New(opts)
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return s, srv
}

// newClient is the official client, without retries, pointed at url, over
// httpClient (a fresh transport when nil) wrapped by SDKHTTPClient.
func newClient(t *testing.T, url string, httpClient ...*http.Client) *bedrockruntime.Client {
	t.Helper()
	var inner *http.Client
	if len(httpClient) > 0 {
		inner = httpClient[0]
	} else {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		t.Cleanup(tr.CloseIdleConnections)
		inner = &http.Client{Transport: tr}
	}
	return bedrockruntime.New(bedrockruntime.Options{
		BaseEndpoint: aws.String(url),
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("AKID", "SECRET", ""),
		Retryer:      aws.NopRetryer{},
		HTTPClient:   SDKHTTPClient(inner),
	})
}

func rawHeader(t *testing.T, md middleware.Metadata) http.Header {
	t.Helper()
	resp, ok := awsmiddleware.GetRawResponse(md).(*smithyhttp.Response)
	if !ok {
		t.Fatal("no raw response in metadata")
	}
	return resp.Header
}

func words(s string) int64 { return int64(len(strings.Fields(s))) }

// jpath walks a decoded JSON value by object keys and array indexes.
func jpath(v any, path ...any) any {
	for _, p := range path {
		switch p := p.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[p]
		case int:
			a, _ := v.([]any)
			if p >= len(a) {
				return nil
			}
			v = a[p]
		}
	}
	return v
}

func jnum(v any, path ...any) int64 {
	f, _ := jpath(v, path...).(float64)
	return int64(f)
}

func jstr(v any, path ...any) string {
	s, _ := jpath(v, path...).(string)
	return s
}

func decode(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("decoding %q: %v", b, err)
	}
	return m
}

const appProfile = "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abcd1234efgh"

// nativeResult extracts the text and usage a family's InvokeModel body reports.
type nativeResult func(m map[string]any) (text, stop string, in, out int64)

var (
	anthropicResult nativeResult = func(m map[string]any) (string, string, int64, int64) {
		return jstr(m, "content", 0, "text"), jstr(m, "stop_reason"), jnum(m, "usage", "input_tokens"), jnum(m, "usage", "output_tokens")
	}
	titanResult nativeResult = func(m map[string]any) (string, string, int64, int64) {
		return jstr(m, "results", 0, "outputText"), jstr(m, "results", 0, "completionReason"), jnum(m, "inputTextTokenCount"), jnum(m, "results", 0, "tokenCount")
	}
	embedResult nativeResult = func(m map[string]any) (string, string, int64, int64) {
		if v, _ := m["embedding"].([]any); len(v) != 8 {
			return "bad embedding", "", 0, 0
		}
		return "", "", jnum(m, "inputTextTokenCount"), 0
	}
	novaResult nativeResult = func(m map[string]any) (string, string, int64, int64) {
		return jstr(m, "output", "message", "content", 0, "text"), jstr(m, "stopReason"), jnum(m, "usage", "inputTokens"), jnum(m, "usage", "outputTokens")
	}
	llamaResult nativeResult = func(m map[string]any) (string, string, int64, int64) {
		return jstr(m, "generation"), jstr(m, "stop_reason"), jnum(m, "prompt_token_count"), jnum(m, "generation_token_count")
	}
	genericResult nativeResult = func(m map[string]any) (string, string, int64, int64) {
		t := jstr(m, "outputs", 0, "text")
		return t, jstr(m, "outputs", 0, "stop_reason"), -1, words(t)
	}
)

var invokeCases = []struct {
	name, model, body string
	in, out           int64
	stop              string
	result            nativeResult
}{
	{"anthropic", "anthropic.claude-3-haiku-20240307-v1:0",
		`{"anthropic_version":"bedrock-2023-05-31","max_tokens":100,"system":"be brief","messages":[{"role":"user","content":"hello there world"},{"role":"assistant","content":[{"type":"text","text":"ok"}]}]}`,
		6, 24, "end_turn", anthropicResult},
	{"anthropic capped", "us.anthropic.claude-3-5-haiku-20241022-v1:0",
		`{"anthropic_version":"bedrock-2023-05-31","max_tokens":5,"messages":[{"role":"user","content":[{"type":"text","text":"a b"},{"type":"image"}]}]}`,
		2, 5, "max_tokens", anthropicResult},
	{"application profile sniffed as anthropic", appProfile,
		`{"anthropic_version":"bedrock-2023-05-31","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`,
		1, 10, "max_tokens", anthropicResult},
	{"titan text", "amazon.titan-text-express-v1",
		`{"inputText":"one two three","textGenerationConfig":{"maxTokenCount":10}}`, 3, 10, "LENGTH", titanResult},
	{"titan embed", "amazon.titan-embed-text-v2:0", `{"inputText":"a b c d"}`, 4, 0, "", embedResult},
	{"cohere embed", "cohere.embed-english-v3", `{"texts":["a b","c"],"input_type":"search_document"}`, 3, 0, "", embedResult},
	{"nova", "us.amazon.nova-lite-v1:0",
		`{"schemaVersion":"messages-v1","system":[{"text":"sys word"}],"messages":[{"role":"user","content":[{"text":"hi you"}]}],"inferenceConfig":{"max_new_tokens":7}}`,
		4, 7, "max_tokens", novaResult},
	{"llama", "meta.llama3-8b-instruct-v1:0", `{"prompt":"a b c d e","max_gen_len":512}`, 5, 24, "stop", llamaResult},
	{"mistral", "mistral.mistral-7b-instruct-v0:2", `{"prompt":"x y","max_tokens":3}`, 2, 3, "length", genericResult},
	{"not json", "mistral.mistral-7b-instruct-v0:2", `0123456789abcdef`, 4, 24, "stop", genericResult},
}

func TestInvokeModel(t *testing.T) {
	t.Parallel()
	s, srv := newServer(t, Options{})
	client := newClient(t, srv.URL)
	var want bedrock.Usage
	for _, tc := range invokeCases {
		out, err := client.InvokeModel(t.Context(), &bedrockruntime.InvokeModelInput{
			ModelId: aws.String(tc.model), Body: []byte(tc.body), ContentType: aws.String("application/json"),
		})
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := aws.ToString(out.ContentType); got != "application/json" {
			t.Errorf("%s: content type %q", tc.name, got)
		}
		text, stop, in, outTokens := tc.result(decode(t, out.Body))
		if in != -1 && in != tc.in || outTokens != tc.out || words(text) != tc.out || stop != tc.stop {
			t.Errorf("%s: got in=%d out=%d words=%d stop=%q, want in=%d out=%d stop=%q (%s)",
				tc.name, in, outTokens, words(text), stop, tc.in, tc.out, tc.stop, out.Body)
		}
		h := rawHeader(t, out.ResultMetadata)
		if h.Get("X-Amzn-Bedrock-Input-Token-Count") != strconv.FormatInt(tc.in, 10) ||
			h.Get("X-Amzn-Bedrock-Output-Token-Count") != strconv.FormatInt(tc.out, 10) ||
			h.Get("X-Amzn-Bedrock-Invocation-Latency") == "" || h.Get("X-Amzn-Requestid") == "" {
			t.Errorf("%s: headers %v", tc.name, h)
		}
		if h.Get("X-Amzn-Bedrock-Cache-Read-Input-Token-Count") != "" {
			t.Errorf("%s: cache header without cache tokens", tc.name)
		}
		want = want.Add(bedrock.Usage{InputTokens: tc.in, OutputTokens: tc.out})
	}
	if got := s.Totals(); got != want {
		t.Errorf("Totals() = %+v, want %+v", got, want)
	}
	reqs := s.Requests()
	if len(reqs) != len(invokeCases) {
		t.Fatalf("observed %d requests, want %d", len(reqs), len(invokeCases))
	}
	for i, r := range reqs {
		tc := invokeCases[i]
		if r.Op != bedrock.OpInvokeModel || r.ModelID != tc.model || r.Status != 200 || string(r.Body) != tc.body ||
			r.Usage != (bedrock.Usage{InputTokens: tc.in, OutputTokens: tc.out}) {
			t.Errorf("observed %d = %+v", i, r)
		}
	}
	if !strings.Contains(reqs[2].RawPath, "%3Aapplication-inference-profile%2Fabcd1234efgh") {
		t.Errorf("RawPath %q is not the single-encoded label", reqs[2].RawPath)
	}
}

// streamResult is what a client learns from an InvokeModelWithResponseStream.
type streamResult struct {
	text           string
	stop           string
	metrics        map[string]any
	events         int
	metricsInLast  bool
	anthropicUsage [2]int64 // message_start input, message_delta output
}

func readInvokeStream(t *testing.T, model string, out *bedrockruntime.InvokeModelWithResponseStreamOutput) (streamResult, error) {
	t.Helper()
	stream := out.GetStream()
	defer stream.Close()
	var r streamResult
	for ev := range stream.Events() {
		chunk, ok := ev.(*types.ResponseStreamMemberChunk)
		if !ok {
			t.Fatalf("unexpected event %T", ev)
		}
		r.events++
		m := decode(t, chunk.Value.Bytes)
		r.metricsInLast = false
		if mm, ok := m["amazon-bedrock-invocationMetrics"].(map[string]any); ok {
			r.metrics, r.metricsInLast = mm, true
		}
		switch {
		case strings.Contains(model, "anthropic"):
			switch m["type"] {
			case "message_start":
				r.anthropicUsage[0] = jnum(m, "message", "usage", "input_tokens")
			case "content_block_delta":
				r.text += jstr(m, "delta", "text")
			case "message_delta":
				r.anthropicUsage[1] = jnum(m, "usage", "output_tokens")
				r.stop = jstr(m, "delta", "stop_reason")
			}
		case strings.Contains(model, "nova"):
			r.text += jstr(m, "contentBlockDelta", "delta", "text")
			if s := jstr(m, "messageStop", "stopReason"); s != "" {
				r.stop = s
			}
		case strings.Contains(model, "titan"):
			r.text += jstr(m, "outputText")
			r.stop = jstr(m, "completionReason")
		case strings.Contains(model, "llama"):
			r.text += jstr(m, "generation")
			r.stop = jstr(m, "stop_reason")
		default:
			r.text += jstr(m, "outputs", 0, "text")
			r.stop = jstr(m, "outputs", 0, "stop_reason")
		}
	}
	return r, stream.Err()
}

func TestInvokeModelWithResponseStream(t *testing.T) {
	t.Parallel()
	s, srv := newServer(t, Options{})
	client := newClient(t, srv.URL)
	var want bedrock.Usage
	for _, tc := range invokeCases {
		if strings.Contains(tc.model, "embed") || tc.name == "application profile sniffed as anthropic" {
			continue
		}
		out, err := client.InvokeModelWithResponseStream(t.Context(), &bedrockruntime.InvokeModelWithResponseStreamInput{
			ModelId: aws.String(tc.model), Body: []byte(tc.body),
		})
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := aws.ToString(out.ContentType); got != "application/json" {
			t.Errorf("%s: X-Amzn-Bedrock-Content-Type %q", tc.name, got)
		}
		r, err := readInvokeStream(t, tc.model, out)
		if err != nil {
			t.Fatalf("%s: stream: %v", tc.name, err)
		}
		if words(r.text) != tc.out || r.text != generatedText(int(tc.out)) || r.stop != tc.stop || !r.metricsInLast ||
			jnum(r.metrics, "inputTokenCount") != tc.in || jnum(r.metrics, "outputTokenCount") != tc.out {
			t.Errorf("%s: got %+v", tc.name, r)
		}
		if _, ok := r.metrics["invocationLatency"]; !ok {
			t.Errorf("%s: metrics without invocationLatency: %v", tc.name, r.metrics)
		}
		if strings.Contains(tc.model, "anthropic") && r.anthropicUsage != [2]int64{tc.in, tc.out} {
			t.Errorf("%s: anthropic usage %v", tc.name, r.anthropicUsage)
		}
		want = want.Add(bedrock.Usage{InputTokens: tc.in, OutputTokens: tc.out})
	}
	if got := s.Totals(); got != want {
		t.Errorf("Totals() = %+v, want %+v", got, want)
	}

	// Embedding models do not stream.
	_, err := client.InvokeModelWithResponseStream(t.Context(), &bedrockruntime.InvokeModelWithResponseStreamInput{
		ModelId: aws.String("amazon.titan-embed-text-v2:0"), Body: []byte(`{"inputText":"x"}`),
	})
	if _, ok := errors.AsType[*types.ValidationException](err); !ok {
		t.Errorf("embedding stream: got %v, want ValidationException", err)
	}
}

func userMessage(text string) types.Message {
	return types.Message{Role: types.ConversationRoleUser, Content: []types.ContentBlock{&types.ContentBlockMemberText{Value: text}}}
}

func TestConverse(t *testing.T) {
	t.Parallel()
	s, srv := newServer(t, Options{OutputTokens: 12})
	client := newClient(t, srv.URL)
	tests := []struct {
		name      string
		maxTokens *int32
		headers   []string
		want      types.TokenUsage
		stop      types.StopReason
	}{
		{"default", nil, nil, types.TokenUsage{InputTokens: aws.Int32(5), OutputTokens: aws.Int32(12), TotalTokens: aws.Int32(17)}, types.StopReasonEndTurn},
		{"capped", aws.Int32(4), nil, types.TokenUsage{InputTokens: aws.Int32(5), OutputTokens: aws.Int32(4), TotalTokens: aws.Int32(9)}, types.StopReasonMaxTokens},
		{"header output", nil, []string{HeaderOutputTokens, "30"}, types.TokenUsage{InputTokens: aws.Int32(5), OutputTokens: aws.Int32(30), TotalTokens: aws.Int32(35)}, types.StopReasonEndTurn},
		{"header output capped", aws.Int32(20), []string{HeaderOutputTokens, "30"}, types.TokenUsage{InputTokens: aws.Int32(5), OutputTokens: aws.Int32(20), TotalTokens: aws.Int32(25)}, types.StopReasonMaxTokens},
		{"cache", nil, []string{HeaderCacheReadTokens, "100", HeaderCacheWriteTokens, "7"},
			types.TokenUsage{InputTokens: aws.Int32(5), OutputTokens: aws.Int32(12), TotalTokens: aws.Int32(124), CacheReadInputTokens: aws.Int32(100), CacheWriteInputTokens: aws.Int32(7)}, types.StopReasonEndTurn},
	}
	var want bedrock.Usage
	for _, tc := range tests {
		in := &bedrockruntime.ConverseInput{
			ModelId:  aws.String("anthropic.claude-3-haiku-20240307-v1:0"),
			System:   []types.SystemContentBlock{&types.SystemContentBlockMemberText{Value: "you are terse"}},
			Messages: []types.Message{userMessage("hello  there\n")},
		}
		if tc.maxTokens != nil {
			in.InferenceConfig = &types.InferenceConfiguration{MaxTokens: tc.maxTokens}
		}
		out, err := client.Converse(t.Context(), in, sdktest.WithHeaders(tc.headers...))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		u := out.Usage
		if aws.ToInt32(u.InputTokens) != aws.ToInt32(tc.want.InputTokens) || aws.ToInt32(u.OutputTokens) != aws.ToInt32(tc.want.OutputTokens) ||
			aws.ToInt32(u.TotalTokens) != aws.ToInt32(tc.want.TotalTokens) ||
			aws.ToInt32(u.CacheReadInputTokens) != aws.ToInt32(tc.want.CacheReadInputTokens) ||
			aws.ToInt32(u.CacheWriteInputTokens) != aws.ToInt32(tc.want.CacheWriteInputTokens) {
			t.Errorf("%s: usage %+v", tc.name, u)
		}
		if out.StopReason != tc.stop || out.Metrics == nil || out.Metrics.LatencyMs == nil {
			t.Errorf("%s: stop %q metrics %+v", tc.name, out.StopReason, out.Metrics)
		}
		msg := out.Output.(*types.ConverseOutputMemberMessage).Value
		text := msg.Content[0].(*types.ContentBlockMemberText).Value
		if msg.Role != types.ConversationRoleAssistant || words(text) != int64(aws.ToInt32(u.OutputTokens)) {
			t.Errorf("%s: message %+v", tc.name, msg)
		}
		want = want.Add(bedrock.Usage{InputTokens: int64(*u.InputTokens), OutputTokens: int64(*u.OutputTokens),
			CacheReadTokens: int64(aws.ToInt32(u.CacheReadInputTokens)), CacheWriteTokens: int64(aws.ToInt32(u.CacheWriteInputTokens))})
	}
	if got := s.Totals(); got != want {
		t.Errorf("Totals() = %+v, want %+v", got, want)
	}
}

// readConverseStream returns the text, the event names in order and the metadata usage.
func readConverseStream(t *testing.T, out *bedrockruntime.ConverseStreamOutput, each func(k int)) (string, []string, *types.TokenUsage, error) {
	t.Helper()
	stream := out.GetStream()
	defer stream.Close()
	var text string
	var names []string
	var usage *types.TokenUsage
	for ev := range stream.Events() {
		switch v := ev.(type) {
		case *types.ConverseStreamOutputMemberMessageStart:
			names = append(names, "messageStart")
		case *types.ConverseStreamOutputMemberContentBlockStart:
			names = append(names, "contentBlockStart")
		case *types.ConverseStreamOutputMemberContentBlockDelta:
			names = append(names, "contentBlockDelta")
			text += v.Value.Delta.(*types.ContentBlockDeltaMemberText).Value
		case *types.ConverseStreamOutputMemberContentBlockStop:
			names = append(names, "contentBlockStop")
		case *types.ConverseStreamOutputMemberMessageStop:
			names = append(names, "messageStop:"+string(v.Value.StopReason))
		case *types.ConverseStreamOutputMemberMetadata:
			names = append(names, "metadata")
			usage = v.Value.Usage
		default:
			t.Fatalf("unexpected event %T", ev)
		}
		if each != nil {
			each(len(names) - 1)
		}
	}
	return text, names, usage, stream.Err()
}

func TestConverseStream(t *testing.T) {
	t.Parallel()
	s, srv := newServer(t, Options{OutputTokens: 3})
	client := newClient(t, srv.URL)
	out, err := client.ConverseStream(t.Context(), &bedrockruntime.ConverseStreamInput{
		ModelId:  aws.String("amazon.nova-lite-v1:0"),
		Messages: []types.Message{userMessage("one two three four")},
	}, sdktest.WithHeaders(HeaderCacheReadTokens, "2"))
	if err != nil {
		t.Fatal(err)
	}
	text, names, usage, err := readConverseStream(t, out, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantNames := "messageStart contentBlockDelta contentBlockDelta contentBlockDelta contentBlockStop messageStop:end_turn metadata"
	if strings.Join(names, " ") != wantNames || text != "lorem ipsum dolor" {
		t.Errorf("events %v text %q", names, text)
	}
	if usage == nil || *usage.InputTokens != 4 || *usage.OutputTokens != 3 || *usage.TotalTokens != 9 || aws.ToInt32(usage.CacheReadInputTokens) != 2 {
		t.Fatalf("usage %+v", usage)
	}
	if got, want := s.Totals(), (bedrock.Usage{InputTokens: 4, OutputTokens: 3, CacheReadTokens: 2}); got != want {
		t.Errorf("Totals() = %+v, want %+v", got, want)
	}
	if r := s.Requests()[0]; r.Op != bedrock.OpConverseStream || r.Status != 200 || r.Usage.OutputTokens != 3 {
		t.Errorf("observed %+v", r)
	}
}

func TestCountTokens(t *testing.T) {
	t.Parallel()
	s, srv := newServer(t, Options{})
	client := newClient(t, srv.URL)
	tests := []struct {
		name  string
		input types.CountTokensInput
		want  int32
	}{
		{"invoke", &types.CountTokensInputMemberInvokeModel{Value: types.InvokeModelTokensRequest{
			Body: []byte(`{"anthropic_version":"bedrock-2023-05-31","max_tokens":9,"messages":[{"role":"user","content":"a b c"}]}`)}}, 3},
		{"converse", &types.CountTokensInputMemberConverse{Value: types.ConverseTokensRequest{
			Messages: []types.Message{userMessage("a b c d e")},
			System:   []types.SystemContentBlock{&types.SystemContentBlockMemberText{Value: "s"}},
		}}, 6},
	}
	for _, tc := range tests {
		out, err := client.CountTokens(t.Context(), &bedrockruntime.CountTokensInput{
			ModelId: aws.String("anthropic.claude-3-5-haiku-20241022-v1:0"), Input: tc.input,
		})
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if aws.ToInt32(out.InputTokens) != tc.want {
			t.Errorf("%s: %d tokens, want %d", tc.name, aws.ToInt32(out.InputTokens), tc.want)
		}
	}
	if got := s.Totals(); got != (bedrock.Usage{}) {
		t.Errorf("CountTokens counted as consumption: %+v", got)
	}
}

func TestApplyGuardrail(t *testing.T) {
	t.Parallel()
	s, srv := newServer(t, Options{})
	client := newClient(t, srv.URL)
	out, err := client.ApplyGuardrail(t.Context(), &bedrockruntime.ApplyGuardrailInput{
		GuardrailIdentifier: aws.String("gr-abc:1"), GuardrailVersion: aws.String("DRAFT"),
		Source:  types.GuardrailContentSourceInput,
		Content: []types.GuardrailContentBlock{&types.GuardrailContentBlockMemberText{Value: types.GuardrailTextBlock{Text: aws.String("hi")}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if out.Action != types.GuardrailActionNone || out.Usage == nil || aws.ToInt32(out.Usage.TopicPolicyUnits) != 1 ||
		out.Outputs == nil || out.Assessments == nil {
		t.Errorf("output %+v", out)
	}
	if r := s.Requests()[0]; r.Op != bedrock.OpApplyGuardrail || r.RawPath != "/guardrail/gr-abc%3A1/version/DRAFT/apply" {
		t.Errorf("observed %+v", r)
	}
}
