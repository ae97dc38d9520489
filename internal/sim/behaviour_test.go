package sim

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bedrock-gateway/gateway/internal/testutil/sdktest"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/document"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"
	"github.com/aws/smithy-go"

	"github.com/bedrock-gateway/gateway/internal/bedrock"
)

func TestAsyncInvoke(t *testing.T) {
	t.Parallel()
	s, srv := newServer(t, Options{})
	client := newClient(t, srv.URL)
	start := func(model string) string {
		out, err := client.StartAsyncInvoke(t.Context(), &bedrockruntime.StartAsyncInvokeInput{
			ModelId:    aws.String(model),
			ModelInput: document.NewLazyDocument(map[string]any{"taskType": "TEXT_VIDEO", "textToVideoParams": map[string]any{"text": "a cat"}}),
			OutputDataConfig: &types.AsyncInvokeOutputDataConfigMemberS3OutputDataConfig{
				Value: types.AsyncInvokeS3OutputDataConfig{S3Uri: aws.String("s3://bucket/out")},
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(out.InvocationArn)
	}
	arn1 := start("amazon.nova-reel-v1:0")
	arn2 := start("amazon.nova-reel-v1:1")
	if !strings.HasPrefix(arn1, "arn:aws:bedrock:us-east-1:111111111111:async-invoke/") || arn1 == arn2 {
		t.Fatalf("ARNs %q %q", arn1, arn2)
	}

	list, err := client.ListAsyncInvokes(t.Context(), &bedrockruntime.ListAsyncInvokesInput{StatusEquals: types.AsyncInvokeStatusInProgress})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.AsyncInvokeSummaries) != 2 || aws.ToString(list.AsyncInvokeSummaries[0].InvocationArn) != arn2 {
		t.Fatalf("list %+v", list.AsyncInvokeSummaries)
	}

	got, err := client.GetAsyncInvoke(t.Context(), &bedrockruntime.GetAsyncInvokeInput{InvocationArn: aws.String(arn1)})
	if err != nil {
		t.Fatal(err)
	}
	s3, ok := got.OutputDataConfig.(*types.AsyncInvokeOutputDataConfigMemberS3OutputDataConfig)
	if got.Status != types.AsyncInvokeStatusCompleted || aws.ToString(got.InvocationArn) != arn1 ||
		aws.ToString(got.ModelArn) != "arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-reel-v1:0" ||
		got.SubmitTime == nil || got.SubmitTime.IsZero() || got.EndTime == nil || !ok || aws.ToString(s3.Value.S3Uri) != "s3://bucket/out" ||
		aws.ToString(got.ClientRequestToken) == "" {
		t.Errorf("get %+v", got)
	}
	if r := s.Requests()[3]; r.Op != bedrock.OpGetAsyncInvoke || !strings.Contains(r.RawPath, "%3Aasync-invoke%2F") {
		t.Errorf("observed %+v", r)
	}

	list, err = client.ListAsyncInvokes(t.Context(), &bedrockruntime.ListAsyncInvokesInput{
		MaxResults: aws.Int32(1), SortOrder: types.SortOrderAscending,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.AsyncInvokeSummaries) != 1 || aws.ToString(list.AsyncInvokeSummaries[0].InvocationArn) != arn1 ||
		list.AsyncInvokeSummaries[0].Status != types.AsyncInvokeStatusCompleted || aws.ToString(list.NextToken) == "" {
		t.Fatalf("page %+v next %v", list.AsyncInvokeSummaries, list.NextToken)
	}

	_, err = client.GetAsyncInvoke(t.Context(), &bedrockruntime.GetAsyncInvokeInput{InvocationArn: aws.String(arn1 + "x")})
	if _, ok := errors.AsType[*types.ResourceNotFoundException](err); !ok {
		t.Errorf("unknown ARN: %v", err)
	}
}

func statusOf(err error) int {
	if re, ok := errors.AsType[*awshttp.ResponseError](err); ok {
		return re.HTTPStatusCode()
	}
	return 0
}

func TestFaultsBeforeHeaders(t *testing.T) {
	t.Parallel()
	s, srv := newServer(t, Options{})
	client := newClient(t, srv.URL)
	tests := []struct {
		fault  string
		status int
		is     func(error) bool
	}{
		{FaultThrottle, 429, func(err error) bool { _, ok := errors.AsType[*types.ThrottlingException](err); return ok }},
		{FaultInternal, 500, func(err error) bool { _, ok := errors.AsType[*types.InternalServerException](err); return ok }},
		{FaultUnavailable, 503, func(err error) bool { _, ok := errors.AsType[*types.ServiceUnavailableException](err); return ok }},
		{FaultTimeout, 408, func(err error) bool { _, ok := errors.AsType[*types.ModelTimeoutException](err); return ok }},
		{FaultModelError, 424, func(err error) bool { _, ok := errors.AsType[*types.ModelErrorException](err); return ok }},
		{FaultMidstream, 500, func(err error) bool { _, ok := errors.AsType[*types.InternalServerException](err); return ok }},
	}
	for _, tc := range tests {
		_, err := client.InvokeModel(t.Context(), &bedrockruntime.InvokeModelInput{
			ModelId: aws.String("meta.llama3-8b-instruct-v1:0"), Body: []byte(`{"prompt":"hi"}`),
		}, sdktest.WithHeaders(HeaderFault, tc.fault))
		if !tc.is(err) || statusOf(err) != tc.status {
			t.Errorf("%s: got %v (status %d)", tc.fault, err, statusOf(err))
		}
		_, err = client.ConverseStream(t.Context(), &bedrockruntime.ConverseStreamInput{
			ModelId: aws.String("amazon.nova-lite-v1:0"), Messages: []types.Message{userMessage("hi")},
		}, sdktest.WithHeaders(HeaderFault, tc.fault))
		if tc.fault != FaultMidstream && (!tc.is(err) || statusOf(err) != tc.status) {
			t.Errorf("%s stream: got %v (status %d)", tc.fault, err, statusOf(err))
		}
	}
	if got := s.Totals(); got != (bedrock.Usage{}) {
		t.Errorf("faulted requests reported usage: %+v", got)
	}
	for _, r := range s.Requests() {
		if r.Fault == "" || r.Usage != (bedrock.Usage{}) {
			t.Errorf("observed %+v", r)
		}
	}

	_, err := client.Converse(t.Context(), &bedrockruntime.ConverseInput{
		ModelId: aws.String("amazon.nova-lite-v1:0"), Messages: []types.Message{userMessage("hi")},
	}, sdktest.WithHeaders(HeaderFault, "bogus"))
	if _, ok := errors.AsType[*types.ValidationException](err); !ok {
		t.Errorf("unknown fault: %v", err)
	}
}

func TestFaultMidstream(t *testing.T) {
	t.Parallel()
	s, srv := newServer(t, Options{})
	client := newClient(t, srv.URL)

	out, err := client.ConverseStream(t.Context(), &bedrockruntime.ConverseStreamInput{
		ModelId: aws.String("amazon.nova-lite-v1:0"), Messages: []types.Message{userMessage("hi")},
	}, sdktest.WithHeaders(HeaderFault, FaultMidstream))
	if err != nil {
		t.Fatal(err)
	}
	_, names, usage, err := readConverseStream(t, out, nil)
	if _, ok := errors.AsType[*types.InternalServerException](err); !ok {
		t.Errorf("converse stream error %v", err)
	}
	if len(names) == 0 || usage != nil {
		t.Errorf("events %v usage %v", names, usage)
	}

	for _, model := range []string{"anthropic.claude-3-haiku-20240307-v1:0", "amazon.titan-text-express-v1"} {
		iout, err := client.InvokeModelWithResponseStream(t.Context(), &bedrockruntime.InvokeModelWithResponseStreamInput{
			ModelId: aws.String(model), Body: []byte(`{"inputText":"hi","messages":[]}`),
		}, sdktest.WithHeaders(HeaderFault, FaultMidstream))
		if err != nil {
			t.Fatal(err)
		}
		r, err := readInvokeStream(t, model, iout)
		if _, ok := errors.AsType[*types.InternalServerException](err); !ok {
			t.Errorf("%s: stream error %v", model, err)
		}
		if r.events == 0 || r.metrics != nil {
			t.Errorf("%s: %+v", model, r)
		}
	}
	if got := s.Totals(); got != (bedrock.Usage{}) {
		t.Errorf("Totals() = %+v after mid-stream faults", got)
	}
	for _, r := range s.Requests() {
		if r.Status != 200 || r.Fault != FaultMidstream {
			t.Errorf("observed %+v", r)
		}
	}
}

func TestFaultReset(t *testing.T) {
	t.Parallel()
	for _, h2 := range []bool{false, true} {
		s := New(Options{})
		srv := httptest.NewUnstartedServer(s)
		srv.EnableHTTP2 = h2
		srv.StartTLS()
		t.Cleanup(srv.Close)
		client := newClient(t, srv.URL, srv.Client())

		_, err := client.Converse(t.Context(), &bedrockruntime.ConverseInput{
			ModelId: aws.String("amazon.nova-lite-v1:0"), Messages: []types.Message{userMessage("hi")},
		}, sdktest.WithHeaders(HeaderFault, FaultReset))
		if _, isAPI := errors.AsType[smithy.APIError](err); err == nil || isAPI {
			t.Errorf("h2=%v converse: got %v, want a transport error", h2, err)
		}

		out, err := client.ConverseStream(t.Context(), &bedrockruntime.ConverseStreamInput{
			ModelId: aws.String("amazon.nova-lite-v1:0"), Messages: []types.Message{userMessage("hi")},
		}, sdktest.WithHeaders(HeaderFault, FaultReset))
		if err != nil {
			t.Fatalf("h2=%v: %v", h2, err)
		}
		_, names, usage, err := readConverseStream(t, out, nil)
		// The Go SDK reads io.ErrUnexpectedEOF as the end of an event stream, so over
		// HTTP/1.1 a truncated stream looks complete to it, just without metadata.
		if err == nil && h2 || len(names) == 0 || usage != nil {
			t.Errorf("h2=%v stream: events %v usage %v err %v", h2, names, usage, err)
		}

		// A plain HTTP client (such as a proxy) does see the stream break.
		req, _ := http.NewRequestWithContext(t.Context(), "POST", srv.URL+"/model/amazon.nova-lite-v1%3A0/converse-stream",
			strings.NewReader(`{"messages":[]}`))
		req.Header.Set(HeaderFault, FaultReset)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || len(body) == 0 || err == nil || !h2 && !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("h2=%v raw stream: status %d, %d bytes, err %v", h2, resp.StatusCode, len(body), err)
		}
		if got := s.Totals(); got != (bedrock.Usage{}) {
			t.Errorf("h2=%v: Totals() = %+v", h2, got)
		}
		for _, r := range s.Requests() {
			if r.Fault != FaultReset {
				t.Errorf("h2=%v: observed %+v", h2, r)
			}
		}
	}
}

func TestFaultRate(t *testing.T) {
	t.Parallel()
	run := func(opts Options) []int {
		s := New(opts)
		var codes []int
		for range 50 {
			w := httptest.NewRecorder()
			s.ServeHTTP(w, httptest.NewRequest("POST", "/model/amazon.nova-lite-v1%3A0/converse", strings.NewReader(`{"messages":[]}`)))
			codes = append(codes, w.Code)
		}
		return codes
	}
	a := run(Options{FaultRate: 0.5, Fault: FaultThrottle, Seed: 7})
	b := run(Options{FaultRate: 0.5, Fault: FaultThrottle, Seed: 7})
	if !slices.Equal(a, b) {
		t.Errorf("same seed, different faults:\n%v\n%v", a, b)
	}
	if !slices.Contains(a, 429) || !slices.Contains(a, 200) {
		t.Errorf("rate 0.5 gave %v", a)
	}
	for _, c := range run(Options{FaultRate: 1, Fault: FaultUnavailable}) {
		if c != 503 {
			t.Fatalf("rate 1 gave %d", c)
		}
	}
	for _, c := range run(Options{}) {
		if c != 200 {
			t.Fatalf("rate 0 gave %d", c)
		}
	}
}

func TestTotalsAcrossOperations(t *testing.T) {
	t.Parallel()
	s, srv := newServer(t, Options{})
	client := newClient(t, srv.URL)
	var want bedrock.Usage
	ctx := t.Context()

	out, err := client.InvokeModel(ctx, &bedrockruntime.InvokeModelInput{
		ModelId: aws.String("anthropic.claude-3-haiku-20240307-v1:0"),
		Body:    []byte(`{"anthropic_version":"bedrock-2023-05-31","max_tokens":50,"messages":[{"role":"user","content":"a b c"}]}`),
	}, sdktest.WithHeaders(HeaderCacheReadTokens, "10", HeaderCacheWriteTokens, "3", HeaderOutputTokens, "8"))
	if err != nil {
		t.Fatal(err)
	}
	h := rawHeader(t, out.ResultMetadata)
	if h.Get("X-Amzn-Bedrock-Cache-Read-Input-Token-Count") != "10" || h.Get("X-Amzn-Bedrock-Cache-Write-Input-Token-Count") != "3" {
		t.Errorf("cache headers %v", h)
	}
	m := decode(t, out.Body)
	want = want.Add(bedrock.Usage{InputTokens: jnum(m, "usage", "input_tokens"), OutputTokens: jnum(m, "usage", "output_tokens"),
		CacheReadTokens: jnum(m, "usage", "cache_read_input_tokens"), CacheWriteTokens: jnum(m, "usage", "cache_creation_input_tokens")})

	sout, err := client.InvokeModelWithResponseStream(ctx, &bedrockruntime.InvokeModelWithResponseStreamInput{
		ModelId: aws.String("anthropic.claude-3-haiku-20240307-v1:0"),
		Body:    []byte(`{"anthropic_version":"bedrock-2023-05-31","max_tokens":50,"messages":[{"role":"user","content":"a b c d"}]}`),
	}, sdktest.WithHeaders(HeaderCacheReadTokens, "5"))
	if err != nil {
		t.Fatal(err)
	}
	r, err := readInvokeStream(t, "anthropic", sout)
	if err != nil {
		t.Fatal(err)
	}
	want = want.Add(bedrock.Usage{InputTokens: jnum(r.metrics, "inputTokenCount"), OutputTokens: jnum(r.metrics, "outputTokenCount"),
		CacheReadTokens: jnum(r.metrics, "cacheReadInputTokenCount"), CacheWriteTokens: jnum(r.metrics, "cacheWriteInputTokenCount")})

	cout, err := client.ConverseStream(ctx, &bedrockruntime.ConverseStreamInput{
		ModelId: aws.String("meta.llama3-8b-instruct-v1:0"), Messages: []types.Message{userMessage("x")},
	}, sdktest.WithHeaders(HeaderOutputTokens, "0"))
	if err != nil {
		t.Fatal(err)
	}
	_, _, u, err := readConverseStream(t, cout, nil)
	if err != nil || u == nil {
		t.Fatal(err)
	}
	want = want.Add(bedrock.Usage{InputTokens: int64(*u.InputTokens), OutputTokens: int64(*u.OutputTokens)})

	if got := s.Totals(); got != want || got.CacheReadTokens != 15 || got.CacheWriteTokens != 3 || got.OutputTokens != 8+24 {
		t.Errorf("Totals() = %+v, client decoded %+v", got, want)
	}
	s.Reset()
	if s.Totals() != (bedrock.Usage{}) || len(s.Requests()) != 0 {
		t.Error("Reset left state behind")
	}
}

// TestOnEventOrdering proves each event is flushed to the client before the next one
// is produced: OnEvent for event k waits until the client has decoded event k-1.
func TestOnEventOrdering(t *testing.T) {
	t.Parallel()
	received := make(chan int, 64)
	var mu sync.Mutex
	var produced []int
	opts := Options{OutputTokens: 5, OnEvent: func(r *http.Request, k int) {
		mu.Lock()
		produced = append(produced, k)
		mu.Unlock()
		if k == 0 {
			return
		}
		select {
		case got := <-received:
			if got != k-1 {
				t.Errorf("before event %d the client had event %d", k, got)
			}
		case <-r.Context().Done():
		case <-time.After(10 * time.Second): // a deadlock guard, not a timing assertion
			t.Errorf("event %d: the client never received event %d", k, k-1)
		}
	}}
	_, srv := newServer(t, opts)
	client := newClient(t, srv.URL)
	out, err := client.ConverseStream(t.Context(), &bedrockruntime.ConverseStreamInput{
		ModelId: aws.String("amazon.nova-lite-v1:0"), Messages: []types.Message{userMessage("hi")},
	})
	if err != nil {
		t.Fatal(err)
	}
	_, names, _, err := readConverseStream(t, out, func(k int) { received <- k })
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(names) != 9 || !slices.Equal(produced, []int{0, 1, 2, 3, 4, 5, 6, 7, 8}) {
		t.Errorf("events %v produced %v", names, produced)
	}
}

func TestVerify(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, code string
		err        error
	}{
		{"plain error", "InvalidSignatureException", errors.New("bad signature")},
		{"bedrock error", "UnrecognizedClientException", bedrock.Unrecognized("The security token included in the request is invalid.")},
	}
	for _, tc := range tests {
		var sawBody []byte
		s, srv := newServer(t, Options{Verify: func(r *http.Request, body []byte) error {
			sawBody = body
			if !strings.Contains(r.Header.Get("Authorization"), "Credential=AKID/") {
				return errors.New("unsigned")
			}
			return tc.err
		}})
		client := newClient(t, srv.URL)
		_, err := client.Converse(t.Context(), &bedrockruntime.ConverseInput{
			ModelId: aws.String("amazon.nova-lite-v1:0"), Messages: []types.Message{userMessage("hi")},
		})
		apiErr, ok := errors.AsType[smithy.APIError](err)
		if !ok || apiErr.ErrorCode() != tc.code || statusOf(err) != 403 {
			t.Errorf("%s: got %v", tc.name, err)
		}
		if !bytes.Contains(sawBody, []byte(`"messages"`)) {
			t.Errorf("%s: Verify saw body %q", tc.name, sawBody)
		}
		if r := s.Requests()[0]; r.Status != 403 || r.Op != bedrock.OpConverse {
			t.Errorf("%s: observed %+v", tc.name, r)
		}
	}
}

func TestLatency(t *testing.T) {
	t.Parallel()
	_, srv := newServer(t, Options{FirstEvent: time.Millisecond})
	client := newClient(t, srv.URL)
	const latency, delay = 20 * time.Millisecond, 5 * time.Millisecond
	begin := time.Now()
	out, err := client.ConverseStream(t.Context(), &bedrockruntime.ConverseStreamInput{
		ModelId: aws.String("amazon.nova-lite-v1:0"), Messages: []types.Message{userMessage("hi")},
	}, sdktest.WithHeaders(HeaderLatency, latency.String(), HeaderEventDelay, delay.String(), HeaderOutputTokens, "2"))
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(begin); d < latency {
		t.Errorf("headers after %v, want at least %v", d, latency)
	}
	if _, _, _, err := readConverseStream(t, out, nil); err != nil {
		t.Fatal(err)
	}
	// 6 events: 5 gaps of the event delay after the first event.
	if d := time.Since(begin); d < latency+5*delay {
		t.Errorf("stream done after %v, want at least %v", d, latency+5*delay)
	}
}

// TestClientGoesAway: a stream whose client leaves stops at once, even with an
// hour-long event delay, and reports nothing.
func TestClientGoesAway(t *testing.T) {
	t.Parallel()
	s := New(Options{})
	srv := httptest.NewServer(s)
	client := newClient(t, srv.URL)
	ctx, cancel := context.WithCancel(t.Context())
	out, err := client.ConverseStream(ctx, &bedrockruntime.ConverseStreamInput{
		ModelId: aws.String("amazon.nova-lite-v1:0"), Messages: []types.Message{userMessage("hi")},
	}, sdktest.WithHeaders(HeaderEventDelay, "1h"))
	if err != nil {
		t.Fatal(err)
	}
	stream := out.GetStream()
	<-stream.Events() // messageStart, then the simulator waits an hour
	cancel()
	stream.Close()

	closed := make(chan struct{})
	go func() { srv.Close(); close(closed) }() // Close waits for running handlers
	select {
	case <-closed:
	case <-time.After(10 * time.Second): // a deadlock guard, not a timing assertion
		t.Fatal("the handler kept running after its client went away")
	}
	if got := s.Totals(); got != (bedrock.Usage{}) {
		t.Errorf("Totals() = %+v", got)
	}
}

func TestRawHTTP(t *testing.T) {
	t.Parallel()
	_, srv := newServer(t, Options{})
	tests := []struct {
		name, method, path, body string
		status                   int
		errType                  string
		check                    func(t *testing.T, m map[string]any)
	}{
		{"unknown path", "POST", "/nope", "", 404, "UnknownOperationException", nil},
		{"malformed converse", "POST", "/model/amazon.nova-lite-v1%3A0/converse", "{", 400, "ValidationException", nil},
		{"malformed count tokens", "POST", "/model/amazon.nova-lite-v1%3A0/count-tokens", "[]", 400, "ValidationException", nil},
		{"bidirectional", "POST", "/model/amazon.nova-sonic-v1%3A0/invoke-with-bidirectional-stream", "", 400, "ValidationException", nil},
		{"bad output header", "POST", "/model/amazon.nova-lite-v1%3A0/converse", "{}", 400, "ValidationException", nil},
		{"list models", "GET", "/foundation-models", "", 200, "", func(t *testing.T, m map[string]any) {
			if l, _ := m["modelSummaries"].([]any); len(l) != 7 || jstr(m, "modelSummaries", 0, "modelArn") == "" {
				t.Errorf("summaries %v", m)
			}
		}},
		{"list models by provider", "GET", "/foundation-models?byProvider=anthropic", "", 200, "", func(t *testing.T, m map[string]any) {
			if l, _ := m["modelSummaries"].([]any); len(l) != 2 {
				t.Errorf("summaries %v", m)
			}
		}},
		{"get model", "GET", "/foundation-models/amazon.titan-embed-text-v2%3A0", "", 200, "", func(t *testing.T, m map[string]any) {
			if jstr(m, "modelDetails", "modelId") != "amazon.titan-embed-text-v2:0" || jstr(m, "modelDetails", "outputModalities", 0) != "EMBEDDING" {
				t.Errorf("details %v", m)
			}
		}},
		{"get model by arn", "GET", "/foundation-models/" + bedrock.EscapeLabel("arn:aws:bedrock:eu-west-1::foundation-model/meta.llama3-8b-instruct-v1:0"), "", 200, "", nil},
		{"get unknown model", "GET", "/foundation-models/nope", "", 404, "ResourceNotFoundException", nil},
	}
	for _, tc := range tests {
		req, err := http.NewRequestWithContext(t.Context(), tc.method, srv.URL+tc.path, strings.NewReader(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		if tc.name == "bad output header" {
			req.Header.Set(HeaderOutputTokens, "-1")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || resp.Header.Get("X-Amzn-Errortype") != tc.errType ||
			resp.Header.Get("X-Amzn-Requestid") == "" || resp.Header.Get("Content-Type") != "application/json" {
			t.Errorf("%s: %d %v %s", tc.name, resp.StatusCode, resp.Header, body)
			continue
		}
		m := decode(t, body)
		if tc.errType != "" && jstr(m, "message") == "" {
			t.Errorf("%s: error body %s", tc.name, body)
		}
		if tc.check != nil {
			tc.check(t, m)
		}
	}
}

// TestMessageStopFrame reproduces the bytes of a real messageStop frame captured from Bedrock.
func TestMessageStopFrame(t *testing.T) {
	t.Parallel()
	want := "0000007a00000051ca2c4665" +
		hex.EncodeToString([]byte("\x0b:event-type\x07\x00\x0bmessageStop")) +
		hex.EncodeToString([]byte("\x0d:content-type\x07\x00\x10application/json")) +
		hex.EncodeToString([]byte("\x0d:message-type\x07\x00\x05event")) +
		hex.EncodeToString([]byte(`{"stopReason":"end_turn"}`)) + "5fbf09fc"
	var buf bytes.Buffer
	if err := eventstream.NewEncoder().Encode(&buf, jsonEvent("messageStop", stopReason{"end_turn"})); err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(buf.Bytes()); got != want {
		t.Errorf("frame\n got %s\nwant %s", got, want)
	}
}

func TestExceptionFrame(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	if err := eventstream.NewEncoder().Encode(&buf, exceptionMessage(midstreamError())); err != nil {
		t.Fatal(err)
	}
	msg, err := eventstream.NewDecoder().Decode(&buf, nil)
	if err != nil {
		t.Fatal(err)
	}
	if msg.Headers.Get(":exception-type").String() != "internalServerException" ||
		msg.Headers.Get(":message-type").String() != "exception" {
		t.Errorf("headers %v", msg.Headers)
	}
	var body struct{ Message string }
	if json.Unmarshal(msg.Payload, &body) != nil || body.Message == "" {
		t.Errorf("payload %s", msg.Payload)
	}
}

func TestHelp(t *testing.T) {
	t.Parallel()
	h := Help()
	for _, want := range append(Faults(), HeaderFault, HeaderOutputTokens, HeaderCacheReadTokens,
		HeaderCacheWriteTokens, HeaderLatency, HeaderEventDelay, "max_gen_len") {
		if !strings.Contains(h, want) {
			t.Errorf("Help() does not mention %q", want)
		}
	}
}
