package proxy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bedrock-gateway/gateway/internal/testutil/sdktest"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/document"
	brtypes "github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/bedrock-gateway/gateway/internal/authn"
	"github.com/bedrock-gateway/gateway/internal/authz"
	"github.com/bedrock-gateway/gateway/internal/bedrock"
	"github.com/bedrock-gateway/gateway/internal/sim"
	"github.com/bedrock-gateway/gateway/internal/state"
	"github.com/bedrock-gateway/gateway/internal/testutil/leakcheck"
	"github.com/bedrock-gateway/gateway/internal/testutil/wait"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

const (
	hubAKID    = "AKIDHUB0000000000001"
	hubSecret  = "hub-secret-0000000000000000000000000000"
	devAKID    = "GWTEST00000000000001"
	devSecret  = "dev-secret-0000000000000000000000000000"
	mktAKID    = "GWTEST00000000000002"
	mktSecret  = "mkt-secret-0000000000000000000000000000"
	haikuModel = "anthropic.claude-3-5-haiku-20241022-v1:0"
)

func testState() *state.State {
	st := &state.State{
		Organization: state.Organization{
			ID: "o-testorg0001", Root: "r-ab12", HubAccount: "111111111111",
			Units: []state.Unit{
				{ID: "ou-ab12-dev00001", Name: "Development"},
				{ID: "ou-ab12-mkt00001", Name: "Marketing"},
			},
			Accounts: []state.Account{
				{ID: "111111111111", Name: "hub"},
				{ID: "222222222222", Name: "support-bot", Unit: "ou-ab12-dev00001"},
				{ID: "444444444444", Name: "campaigns", Unit: "ou-ab12-mkt00001"},
			},
		},
		Entitlements: []state.Entitlement{
			{Name: "support-llm", Model: haikuModel, Scope: []string{"o-testorg0001"},
				Shares:       []state.Share{{Target: "ou-ab12-dev00001"}},
				ServiceTiers: []string{"priority", "optimized"}, Guardrails: []string{"abc123"}},
			{Name: "nova", Model: "amazon.nova-lite-v1:0", Shares: []state.Share{{Target: "ou-ab12-dev00001"}},
				AsyncOutputPrefixes: []string{"s3://bucket/out", "s3://team-{account}"}},
			{Name: "titan", Model: "amazon.titan-text-express-v1", Shares: []state.Share{{Target: "ou-ab12-dev00001"}}},
			{Name: "llama", Model: "meta.llama3-8b-instruct-v1:0", Shares: []state.Share{{Target: "ou-ab12-dev00001"}}},
			{Name: "embed", Model: "amazon.titan-embed-text-v2:0", Shares: []state.Share{{Target: "ou-ab12-dev00001"}}},
			{Name: "marketing-only", Model: "amazon.nova-micro-v1:0", Shares: []state.Share{{Target: "ou-ab12-mkt00001"}}},
		},
		Credentials: []state.Credential{
			{Account: "222222222222", Kind: state.KindSigV4, Label: "dev", AccessKeyID: devAKID, Secret: devSecret},
			{Account: "444444444444", Kind: state.KindSigV4, Label: "mkt", AccessKeyID: mktAKID, Secret: mktSecret},
			{Account: "222222222222", Kind: state.KindAPIKey, Label: "dev-notebook", KeySHA256: sha256Hex(devAPIKey)},
		},
	}
	st.Normalize()
	return st
}

type staticSnapshots struct{ s *authz.Snapshot }

func (s staticSnapshots) Current() *authz.Snapshot { return s.s }

// settlement is what the fake quota saw for one admitted call.
type settlement struct {
	reserved, counted int64
	usage             bedrock.Usage
	released          bool
	tier              string
}

type fakeQuota struct {
	mu   sync.Mutex
	done []settlement
}

func (q *fakeQuota) Reserve(_ context.Context, req QuotaRequest) (Ticket, error) {
	return &fakeTicket{q: q, reserved: req.Tokens, tier: req.Tier}, nil
}

func (q *fakeQuota) settlements() []settlement {
	q.mu.Lock()
	defer q.mu.Unlock()
	return append([]settlement(nil), q.done...)
}

type fakeTicket struct {
	q        *fakeQuota
	reserved int64
	tier     string
}

func (t *fakeTicket) Remaining() int64 { return 1000 }
func (t *fakeTicket) Settle(_ context.Context, counted int64, u bedrock.Usage) {
	t.q.mu.Lock()
	t.q.done = append(t.q.done, settlement{reserved: t.reserved, counted: counted, usage: u, tier: t.tier})
	t.q.mu.Unlock()
}
func (t *fakeTicket) Release(context.Context) {
	t.q.mu.Lock()
	t.q.done = append(t.q.done, settlement{reserved: t.reserved, released: true, tier: t.tier})
	t.q.mu.Unlock()
}

type harness struct {
	sim      *sim.Simulator
	simURL   string
	gateway  *httptest.Server
	handler  *Handler
	quota    *fakeQuota
	upstream *httptest.Server
}

type harnessOptions struct {
	sim      sim.Options
	proxy    func(*Options)
	upstream string // override the upstream URL
	tls      bool   // serve HTTPS (HTTP/1.1 and h2) instead of HTTP/1.1 and h2c
}

func newHarness(t *testing.T, ho harnessOptions) *harness {
	t.Helper()
	hubLookup, err := authn.NewStaticLookup(&authn.Credential{ID: hubAKID, Account: "111111111111", Kind: authn.KindSigV4, Secret: hubSecret})
	if err != nil {
		t.Fatal(err)
	}
	verifier := authn.NewVerifier(authn.Options{})
	ho.sim.Verify = func(r *http.Request, body []byte) error { return authn.VerifyStatic(verifier, r, body, hubLookup) }
	h := &harness{sim: sim.New(ho.sim), quota: &fakeQuota{}}
	h.upstream = httptest.NewServer(h.sim)
	t.Cleanup(h.upstream.Close)
	h.simURL = h.upstream.URL
	if ho.upstream != "" {
		h.simURL = ho.upstream
	}
	st := testState()
	if err := st.Validate(); err != nil {
		t.Fatal(err)
	}
	snap, err := authz.Build(st, 1)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(h.simURL)
	opts := Options{
		Upstream: u, Region: "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider(hubAKID, hubSecret, ""),
		Snapshots:   staticSnapshots{snap},
		Verifier:    authn.NewVerifier(authn.Options{}),
		Quota:       h.quota,
	}
	if ho.proxy != nil {
		ho.proxy(&opts)
	}
	h.handler, err = New(opts)
	if err != nil {
		t.Fatal(err)
	}
	h.gateway = httptest.NewUnstartedServer(h.handler)
	if ho.tls {
		h.gateway.EnableHTTP2 = true
		h.gateway.StartTLS()
	} else {
		var p http.Protocols
		p.SetHTTP1(true)
		p.SetUnencryptedHTTP2(true)
		h.gateway.Config.Protocols = &p
		h.gateway.Start()
	}
	t.Cleanup(h.gateway.Close)
	return h
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func (h *harness) client(t *testing.T, akid, secret string, optFns ...func(*bedrockruntime.Options)) *bedrockruntime.Client {
	t.Helper()
	// The gateway answers as fast as a local server can: without the
	// simulator's workaround the SDK's race with net/http over the request
	// body (see sim.SDKHTTPClient) may close the connection under a stream.
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return bedrockruntime.New(bedrockruntime.Options{
		BaseEndpoint: aws.String(h.gateway.URL),
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider(akid, secret, ""),
		Retryer:      aws.NopRetryer{},
		HTTPClient:   sim.SDKHTTPClient(&http.Client{Transport: tr}),
	}, optFns...)
}

func userMessage(text string) []brtypes.Message {
	return []brtypes.Message{{Role: brtypes.ConversationRoleUser, Content: []brtypes.ContentBlock{&brtypes.ContentBlockMemberText{Value: text}}}}
}

func lastObserved(t *testing.T, s *sim.Simulator) sim.Observed {
	t.Helper()
	reqs := s.Requests()
	if len(reqs) == 0 {
		t.Fatal("the simulator saw no request")
	}
	return reqs[len(reqs)-1]
}

func apiErrorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func httpStatus(err error) int {
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

func TestEveryOperationThroughGateway(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	c := h.client(t, devAKID, devSecret)
	ctx := context.Background()

	anthropicBody := []byte(`{"anthropic_version":"bedrock-2023-05-31","max_tokens":10,"messages":[{"role":"user","content":"three little words"}]}`)
	t.Run("InvokeModel", func(t *testing.T) {
		out, err := c.InvokeModel(ctx, &bedrockruntime.InvokeModelInput{ModelId: aws.String("support-llm"), Body: anthropicBody, ContentType: aws.String("application/json")})
		if err != nil {
			t.Fatal(err)
		}
		var resp struct {
			Usage struct{ InputTokens, OutputTokens int } `json:"usage"`
		}
		_ = json.Unmarshal(out.Body, &resp)
		obs := lastObserved(t, h.sim)
		if obs.ModelID != haikuModel || obs.Status != 200 {
			t.Fatalf("simulator saw model %q status %d", obs.ModelID, obs.Status)
		}
		if !strings.Contains(obs.RawPath, "%3A0") {
			t.Fatalf("upstream path not single-encoded: %s", obs.RawPath)
		}
	})
	t.Run("InvokeModelOtherFamilies", func(t *testing.T) {
		for name, body := range map[string]string{
			"nova":  `{"messages":[{"role":"user","content":[{"text":"hi there"}]}],"inferenceConfig":{"max_new_tokens":5}}`,
			"titan": `{"inputText":"hello titan","textGenerationConfig":{"maxTokenCount":5}}`,
			"llama": `{"prompt":"hello llama","max_gen_len":5}`,
			"embed": `{"inputText":"embed me"}`,
		} {
			if _, err := c.InvokeModel(ctx, &bedrockruntime.InvokeModelInput{ModelId: aws.String(name), Body: []byte(body), ContentType: aws.String("application/json")}); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
		}
	})
	t.Run("InvokeModelWithResponseStream", func(t *testing.T) {
		out, err := c.InvokeModelWithResponseStream(ctx, &bedrockruntime.InvokeModelWithResponseStreamInput{ModelId: aws.String("support-llm"), Body: anthropicBody, ContentType: aws.String("application/json")})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for ev := range out.GetStream().Events() {
			if _, ok := ev.(*brtypes.ResponseStreamMemberChunk); ok {
				n++
			}
		}
		if err := out.GetStream().Err(); err != nil {
			t.Fatal(err)
		}
		if n < 3 {
			t.Fatalf("only %d chunks", n)
		}
	})
	t.Run("Converse", func(t *testing.T) {
		out, err := c.Converse(ctx, &bedrockruntime.ConverseInput{ModelId: aws.String("support-llm"), Messages: userMessage("hello gateway"),
			InferenceConfig: &brtypes.InferenceConfiguration{MaxTokens: aws.Int32(7)}})
		if err != nil {
			t.Fatal(err)
		}
		if aws.ToInt32(out.Usage.InputTokens) != 2 || aws.ToInt32(out.Usage.OutputTokens) != 7 {
			t.Fatalf("usage %+v", out.Usage)
		}
	})
	t.Run("ConverseStream", func(t *testing.T) {
		out, err := c.ConverseStream(ctx, &bedrockruntime.ConverseStreamInput{ModelId: aws.String("support-llm"), Messages: userMessage("stream to me")})
		if err != nil {
			t.Fatal(err)
		}
		var meta *brtypes.ConverseStreamMetadataEvent
		for ev := range out.GetStream().Events() {
			if m, ok := ev.(*brtypes.ConverseStreamOutputMemberMetadata); ok {
				meta = &m.Value
			}
		}
		if err := out.GetStream().Err(); err != nil {
			t.Fatal(err)
		}
		if meta == nil || aws.ToInt32(meta.Usage.InputTokens) != 3 {
			t.Fatalf("metadata %+v", meta)
		}
	})
	t.Run("CountTokens", func(t *testing.T) {
		out, err := c.CountTokens(ctx, &bedrockruntime.CountTokensInput{ModelId: aws.String("support-llm"),
			Input: &brtypes.CountTokensInputMemberConverse{Value: brtypes.ConverseTokensRequest{Messages: userMessage("count these four words")}}})
		if err != nil {
			t.Fatal(err)
		}
		if aws.ToInt32(out.InputTokens) != 4 {
			t.Fatalf("inputTokens %d", aws.ToInt32(out.InputTokens))
		}
	})
	t.Run("ApplyGuardrail", func(t *testing.T) {
		_, err := c.ApplyGuardrail(ctx, &bedrockruntime.ApplyGuardrailInput{GuardrailIdentifier: aws.String("abc123"), GuardrailVersion: aws.String("1"),
			Source: brtypes.GuardrailContentSourceInput, Content: []brtypes.GuardrailContentBlock{&brtypes.GuardrailContentBlockMemberText{Value: brtypes.GuardrailTextBlock{Text: aws.String("hello")}}}})
		if err != nil {
			t.Fatal(err)
		}
	})
	t.Run("AsyncInvoke", func(t *testing.T) {
		start, err := c.StartAsyncInvoke(ctx, &bedrockruntime.StartAsyncInvokeInput{ModelId: aws.String("nova"),
			ModelInput:       document.NewLazyDocument(map[string]any{"taskType": "TEXT_VIDEO", "textToVideoParams": map[string]any{"text": "a cat"}}),
			OutputDataConfig: &brtypes.AsyncInvokeOutputDataConfigMemberS3OutputDataConfig{Value: brtypes.AsyncInvokeS3OutputDataConfig{S3Uri: aws.String("s3://bucket/out")}}})
		if err != nil {
			t.Fatal(err)
		}
		if obs := lastObserved(t, h.sim); !strings.Contains(string(obs.Body), "amazon.nova-lite-v1:0") {
			t.Fatalf("upstream body does not carry the upstream model: %s", obs.Body)
		}
		if _, err := c.GetAsyncInvoke(ctx, &bedrockruntime.GetAsyncInvokeInput{InvocationArn: start.InvocationArn}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.ListAsyncInvokes(ctx, &bedrockruntime.ListAsyncInvokesInput{MaxResults: aws.Int32(10)}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("Usage settled exactly", func(t *testing.T) {
		total := bedrock.Usage{}
		for _, s := range h.quota.settlements() {
			if s.released {
				t.Fatalf("unexpected release %+v", s)
			}
			total = total.Add(s.usage)
		}
		if total != h.sim.Totals() {
			t.Fatalf("settled %+v, simulator reported %+v", total, h.sim.Totals())
		}
	})
}

func TestAccessDeniedIsIndistinguishable(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	c := h.client(t, devAKID, devSecret)
	msgs := userMessage("hi")
	var got []string
	for _, model := range []string{"marketing-only", "does-not-exist"} {
		_, err := c.Converse(context.Background(), &bedrockruntime.ConverseInput{ModelId: aws.String(model), Messages: msgs})
		if apiErrorCode(err) != "AccessDeniedException" || httpStatus(err) != 403 {
			t.Fatalf("%s: %v", model, err)
		}
		var ae smithy.APIError
		errors.As(err, &ae)
		got = append(got, ae.ErrorMessage())
	}
	if got[0] != got[1] {
		t.Fatalf("unshared and unknown differ: %q vs %q", got[0], got[1])
	}
	if n := len(h.sim.Requests()); n != 0 {
		t.Fatalf("denied calls reached the upstream (%d)", n)
	}
}

func TestBadSignatureRejected(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	c := h.client(t, devAKID, "wrong-secret-000000000000000000000000000")
	_, err := c.Converse(context.Background(), &bedrockruntime.ConverseInput{ModelId: aws.String("support-llm"), Messages: userMessage("hi")})
	if apiErrorCode(err) != "InvalidSignatureException" || httpStatus(err) != 403 {
		t.Fatalf("got %v", err)
	}
}

func TestBodyLimit(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{proxy: func(o *Options) { o.MaxBodyBytes = 1024 }})
	c := h.client(t, devAKID, devSecret)
	big := `{"max_tokens":5,"messages":[{"role":"user","content":"` + strings.Repeat("a", 2000) + `"}]}`
	_, err := c.InvokeModel(context.Background(), &bedrockruntime.InvokeModelInput{ModelId: aws.String("support-llm"), Body: []byte(big)})
	if apiErrorCode(err) != "ValidationException" || httpStatus(err) != 400 {
		t.Fatalf("got %v", err)
	}
	// A chunked body without Content-Length is bounded too (hand-built: bad
	// input, from a known key, whose body the gateway reads).
	req, _ := http.NewRequest("POST", h.gateway.URL+"/model/support-llm/invoke", io.MultiReader(strings.NewReader(big)))
	req.ContentLength = -1
	req.Header = knownKeyHeaders(t, req.URL.Host, "/model/support-llm/invoke")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 || resp.Header.Get("X-Amzn-Errortype") != "ValidationException" {
		t.Fatalf("chunked oversize: %d %s", resp.StatusCode, resp.Header.Get("X-Amzn-Errortype"))
	}
	if n := len(h.sim.Requests()); n != 0 {
		t.Fatalf("oversized body reached the upstream (%d)", n)
	}
}

func TestUnknownPath(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	resp, err := http.Post(h.gateway.URL+"/nope", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 || resp.Header.Get("X-Amzn-Errortype") != "UnknownOperationException" ||
		resp.Header.Get("X-Amzn-Requestid") == "" || resp.Header.Get("Date") == "" {
		t.Fatalf("got %d %v", resp.StatusCode, resp.Header)
	}
}

func TestUpstreamUnreachable(t *testing.T) {
	t.Parallel()
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close() // nothing listens here now
	h := newHarness(t, harnessOptions{upstream: "http://" + addr})
	c := h.client(t, devAKID, devSecret)
	_, err := c.Converse(context.Background(), &bedrockruntime.ConverseInput{ModelId: aws.String("support-llm"), Messages: userMessage("hi")})
	if apiErrorCode(err) != "ServiceUnavailableException" || httpStatus(err) != 503 {
		t.Fatalf("got %v", err)
	}
	if s := h.quota.settlements(); len(s) != 1 || !s[0].released {
		t.Fatalf("reservation not released: %+v", s)
	}
}

func TestUpstreamHeaderTimeout(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{proxy: func(o *Options) { o.HeaderTimeout = 50 * time.Millisecond }})
	c := h.client(t, devAKID, devSecret, sdktest.WithHeaders("X-Sim-Latency", "2s"))
	_, err := c.Converse(context.Background(), &bedrockruntime.ConverseInput{ModelId: aws.String("support-llm"), Messages: userMessage("hi")})
	if apiErrorCode(err) != "ModelTimeoutException" || httpStatus(err) != 408 {
		t.Fatalf("got %v", err)
	}
}

func TestUpstreamErrorsPassThrough(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	for fault, want := range map[string]struct {
		code   string
		status int
	}{
		"throttle":    {"ThrottlingException", 429},
		"internal":    {"InternalServerException", 500},
		"model-error": {"ModelErrorException", 424},
	} {
		c := h.client(t, devAKID, devSecret, sdktest.WithHeaders("X-Sim-Fault", fault))
		_, err := c.Converse(context.Background(), &bedrockruntime.ConverseInput{ModelId: aws.String("support-llm"), Messages: userMessage("hi")})
		if apiErrorCode(err) != want.code || httpStatus(err) != want.status {
			t.Fatalf("%s: got %v", fault, err)
		}
	}
	for _, s := range h.quota.settlements() {
		if !s.released {
			t.Fatalf("upstream error was charged: %+v", s)
		}
	}
}

func TestMidStreamFailures(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	for _, fault := range []string{"midstream", "reset"} {
		c := h.client(t, devAKID, devSecret, sdktest.WithHeaders("X-Sim-Fault", fault))
		out, err := c.ConverseStream(context.Background(), &bedrockruntime.ConverseStreamInput{ModelId: aws.String("support-llm"), Messages: userMessage("hi")})
		if err != nil {
			t.Fatalf("%s: %v", fault, err)
		}
		for range out.GetStream().Events() {
		}
		if out.GetStream().Err() == nil {
			t.Fatalf("%s: the client saw a clean end of stream", fault)
		}
	}
}

// TestStreamsForwardEachEvent proves there is no buffering: the simulator does
// not emit event k+1 until the SDK client has received event k through the gateway.
func TestStreamsForwardEachEvent(t *testing.T) {
	t.Parallel()
	received := make(chan int, 1000)
	// ended lets the simulator stop waiting once the test is over: a failed
	// client leaves the gateway draining the upstream, and the server's Close
	// would wait for every event's deadlock detector in turn.
	ended := make(chan struct{})
	var mu sync.Mutex
	stuck := false
	h := newHarness(t, harnessOptions{sim: sim.Options{OnEvent: func(r *http.Request, k int) {
		if k == 0 {
			return
		}
		select {
		case got := <-received:
			if got != k-1 {
				mu.Lock()
				stuck = true
				mu.Unlock()
			}
		case <-ended:
		case <-time.After(10 * time.Second): // deadlock detector, not a performance bound
			mu.Lock()
			stuck = true
			mu.Unlock()
		}
	}}})
	t.Cleanup(func() { close(ended) }) // runs before the servers' Close
	c := h.client(t, devAKID, devSecret)
	ctx := context.Background()

	out, err := c.ConverseStream(ctx, &bedrockruntime.ConverseStreamInput{ModelId: aws.String("support-llm"), Messages: userMessage("hi"),
		InferenceConfig: &brtypes.InferenceConfiguration{MaxTokens: aws.Int32(5)}})
	if err != nil {
		t.Fatal(err)
	}
	k := 0
	for range out.GetStream().Events() {
		received <- k
		k++
	}
	if err := out.GetStream().Err(); err != nil {
		t.Fatal(err)
	}

	// The last event's number was never consumed (no event follows it).
	for len(received) > 0 {
		<-received
	}
	body := []byte(`{"anthropic_version":"bedrock-2023-05-31","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}`)
	out2, err := c.InvokeModelWithResponseStream(ctx, &bedrockruntime.InvokeModelWithResponseStreamInput{ModelId: aws.String("support-llm"), Body: body})
	if err != nil {
		t.Fatal(err)
	}
	k = 0
	for range out2.GetStream().Events() {
		received <- k
		k++
	}
	if err := out2.GetStream().Err(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if stuck {
		t.Fatal("an event was not forwarded before the next one was produced")
	}
}

// TestClientDisconnectMidStream: the client goes away after the first event; the
// gateway keeps reading upstream and settles the exact usage; nothing is left running.
func TestClientDisconnectMidStream(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{sim: sim.Options{EventDelay: 5 * time.Millisecond}})
	c := h.client(t, devAKID, devSecret)
	ctx, cancel := context.WithCancel(context.Background())
	out, err := c.ConverseStream(ctx, &bedrockruntime.ConverseStreamInput{ModelId: aws.String("support-llm"), Messages: userMessage("hi"),
		InferenceConfig: &brtypes.InferenceConfiguration{MaxTokens: aws.Int32(20)}})
	if err != nil {
		t.Fatal(err)
	}
	<-out.GetStream().Events()
	cancel()
	out.GetStream().Close()
	wait.For(t, "a settlement after the client disconnected", 10*time.Second, func() bool { return len(h.quota.settlements()) > 0 })
	s := h.quota.settlements()[0]
	if s.usage != h.sim.Totals() || s.usage.OutputTokens != 20 {
		t.Fatalf("settled %+v, simulator reported %+v", s.usage, h.sim.Totals())
	}
}
