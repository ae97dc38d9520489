package proxy

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"

	"github.com/bedrock-gateway/gateway/internal/authn"
	"github.com/bedrock-gateway/gateway/internal/bedrock"
	"github.com/bedrock-gateway/gateway/internal/sim"
	"github.com/bedrock-gateway/gateway/internal/testutil/bidisdk"
	"github.com/bedrock-gateway/gateway/internal/testutil/sdktest"
	"github.com/bedrock-gateway/gateway/internal/testutil/wait"
)

// The "nova" entitlement's upstream model, which the simulator must see.
const bidiUpstreamModel = "amazon.nova-lite-v1:0"

// bidiHarness is the e2e harness with an upstream simulator that speaks h2c
// and verifies every envelope of the hub's chain.
type bidiHarness struct {
	*harness
	verified atomic.Int64 // envelopes that passed the simulator's check
}

func newBidiHarness(t *testing.T, so sim.Options) *bidiHarness {
	t.Helper()
	b := &bidiHarness{}
	var target atomic.Pointer[sim.Simulator]
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { target.Load().ServeHTTP(w, r) }))
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	up.Config.Protocols = &p
	up.Start()
	t.Cleanup(up.Close)

	hubLookup, err := authn.NewStaticLookup(&authn.Credential{ID: hubAKID, Account: "111111111111", Kind: authn.KindSigV4, Secret: hubSecret})
	if err != nil {
		t.Fatal(err)
	}
	verifier := authn.NewVerifier(authn.Options{})
	so.VerifyStream = func(r *http.Request) (func(io.Reader) ([]byte, bool, error), error) {
		res, err := verifier.Authenticate(r, authn.StreamingEvents, hubLookup)
		if err != nil {
			return nil, err
		}
		cv, err := verifier.NewChunkVerifier(res)
		if err != nil {
			return nil, err
		}
		return func(body io.Reader) ([]byte, bool, error) {
			payload, end, err := cv.Next(body)
			if err == nil {
				b.verified.Add(1)
			}
			return payload, end, err
		}, nil
	}
	b.harness = newHarness(t, harnessOptions{sim: so, upstream: up.URL})
	target.Store(b.sim)
	return b
}

// h2cHTTPClient speaks only h2c (HTTP/2 with prior knowledge over http://).
func h2cHTTPClient(t *testing.T) *http.Client {
	t.Helper()
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Protocols: &p}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

func (b *bidiHarness) sdk(t *testing.T) *bedrockruntime.Client {
	t.Helper()
	hc := h2cHTTPClient(t)
	return b.client(t, devAKID, devSecret, func(o *bedrockruntime.Options) { o.HTTPClient = hc })
}

func TestBidiThroughGatewayWithSDK(t *testing.T) {
	t.Parallel()
	h := newBidiHarness(t, sim.Options{})
	ctx := t.Context()
	out, err := h.sdk(t).InvokeModelWithBidirectionalStream(ctx, &bedrockruntime.InvokeModelWithBidirectionalStreamInput{ModelId: aws.String("nova")})
	if err != nil {
		t.Fatal(err)
	}
	stream := out.GetStream()
	defer stream.Close()
	inputs := []string{"hello gateway", "are you streaming both ways", "good"}
	for _, in := range inputs {
		if err := bidisdk.Send(ctx, stream, bidisdk.TextInput(in)); err != nil {
			t.Fatal(err)
		}
		// Full duplex end to end: the answer arrives before the next input exists.
		if got := bidisdk.TextOutput(bidisdk.Next(t, stream)); got != in {
			t.Fatalf("echo %q, want %q", got, in)
		}
	}
	if err := stream.Writer.Close(); err != nil {
		t.Fatal(err)
	}
	last := bidisdk.Next(t, stream)
	if _, ok := last["amazon-bedrock-invocationMetrics"]; !ok {
		t.Fatalf("final chunk %v", last)
	}
	if doc := bidisdk.Next(t, stream); doc != nil {
		t.Fatalf("event after the final chunk: %v", doc)
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}

	obs := lastObserved(t, h.sim)
	if obs.Op != bedrock.OpInvokeModelWithBidirectionalStream || obs.ModelID != bidiUpstreamModel || obs.Status != 200 {
		t.Fatalf("simulator saw %v model %q status %d", obs.Op, obs.ModelID, obs.Status)
	}
	if obs.Header.Get("X-Amz-Content-Sha256") != authn.StreamingEvents || strings.Contains(obs.Header.Get("Authorization"), devAKID) {
		t.Fatalf("upstream request not re-signed for a stream: %v", obs.Header)
	}
	if got := h.verified.Load(); got != int64(len(inputs))+1 {
		t.Fatalf("simulator verified %d envelopes of the hub chain, want %d", got, len(inputs)+1)
	}
	want := bedrock.Usage{InputTokens: 8, OutputTokens: 8}
	if h.sim.Totals() != want {
		t.Fatalf("simulator reported %+v, want %+v", h.sim.Totals(), want)
	}
	s := h.quota.settlements()
	if len(s) != 1 || s[0].released || s[0].usage != want || s[0].counted != 16 || s[0].reserved != 4096 {
		t.Fatalf("settlements %+v, want one of %+v", s, want)
	}
}

// rawBidi is a hand-made bidirectional request to the gateway, signed as the
// SDK signs it, whose envelopes the test writes (and may break).
type rawBidi struct {
	req  *http.Request
	resp *http.Response
	body *io.PipeWriter
	seed []byte
}

// newRawBidi signs a request; do sends it.
func newRawBidi(t *testing.T, url, model string, header http.Header) *rawBidi {
	t.Helper()
	pr, pw := io.Pipe()
	t.Cleanup(func() { pw.Close() })
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url+bedrock.ModelPath(bedrock.OpInvokeModelWithBidirectionalStream, model), pr)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", eventStreamType)
	if req.Header.Get("X-Amz-Content-Sha256") == "" {
		req.Header.Set("X-Amz-Content-Sha256", authn.StreamingEvents)
	}
	creds := aws.Credentials{AccessKeyID: devAKID, SecretAccessKey: devSecret}
	if err := v4.NewSigner().SignHTTP(t.Context(), creds, req, req.Header.Get("X-Amz-Content-Sha256"), "bedrock", "us-east-1", time.Now().UTC()); err != nil {
		t.Fatal(err)
	}
	seed, err := v4.GetSignedRequestSignature(req)
	if err != nil {
		t.Fatal(err)
	}
	return &rawBidi{req: req, body: pw, seed: seed}
}

func (b *rawBidi) do(t *testing.T, hc *http.Client) {
	t.Helper()
	resp, err := hc.Do(b.req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	b.resp = resp
}

func openRawBidi(t *testing.T, url, model string, hc *http.Client, header http.Header) *rawBidi {
	t.Helper()
	b := newRawBidi(t, url, model, header)
	b.do(t, hc)
	return b
}

// write signs native's chunk event with secret, continuing s's chain (a new
// chain from the request's seed when s is nil), and sends it.
func (b *rawBidi) write(t *testing.T, s *authn.ChunkSigner, secret string, native []byte) *authn.ChunkSigner {
	t.Helper()
	if s == nil || secret != devSecret {
		// A signer with another key cannot continue a chain; it starts from
		// the seed, which makes its envelope wrong either way.
		s = authn.NewChunkSigner(authn.ChunkSignerOptions{
			Credentials: aws.Credentials{AccessKeyID: devAKID, SecretAccessKey: secret}, Region: "us-east-1", Seed: b.seed,
		})
	}
	if err := s.WriteEnvelope(b.body, bidisdk.InputEvent(t, native)); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestBidiTamperedEnvelope(t *testing.T) {
	t.Parallel()
	const badSecret = "not-the-secret-000000000000000000000000"
	for _, good := range []int{0, 1, 2} { // envelopes before the tampered one
		t.Run(strconv.Itoa(good)+" good", func(t *testing.T) {
			t.Parallel()
			h := newBidiHarness(t, sim.Options{})
			b := openRawBidi(t, h.gateway.URL, "nova", h2cHTTPClient(t), nil)
			if b.resp.StatusCode != 200 {
				t.Fatalf("status %d %s", b.resp.StatusCode, b.resp.Header.Get("X-Amzn-Errortype"))
			}
			dec := eventstream.NewDecoder()
			var s *authn.ChunkSigner
			for range good {
				s = b.write(t, s, devSecret, bidisdk.TextInput("one two three"))
				msg, err := dec.Decode(b.resp.Body, nil)
				if err != nil || msg.Headers.Get(":event-type").String() != "chunk" {
					t.Fatalf("answer: %v %v", msg.Headers, err)
				}
			}
			// This envelope continues the chain with a key that is not the caller's.
			b.write(t, s, badSecret, bidisdk.TextInput("four"))
			msg, err := dec.Decode(b.resp.Body, nil)
			if err != nil || msg.Headers.Get(":message-type").String() != "exception" ||
				msg.Headers.Get(":exception-type").String() != "invalidSignatureException" {
				t.Fatalf("after a tampered envelope: %v %v", msg.Headers, err)
			}
			if _, err := dec.Decode(b.resp.Body, nil); !errors.Is(err, io.EOF) {
				t.Fatalf("the stream went on after the exception: %v", err)
			}
			if got := h.verified.Load(); got != int64(good) {
				t.Fatalf("the simulator verified %d envelopes, want %d", got, good)
			}
			if got := h.sim.Totals(); got != (bedrock.Usage{}) {
				t.Fatalf("the cancelled session reported %+v", got)
			}
			settled := h.quota.settlements()
			switch {
			case len(settled) != 1:
				t.Fatalf("settlements %+v", settled)
			case good == 0 && !settled[0].released:
				t.Fatalf("nothing reached the model, yet it was charged: %+v", settled)
			case good > 0 && (settled[0].released || settled[0].counted != settled[0].reserved):
				// Events reached the model, whose usage is unknown: the estimate is charged.
				t.Fatalf("settlements %+v", settled)
			}
		})
	}
}

// TestBidiTamperedBeforeAnswer: the chain breaks while the upstream has not
// answered yet; the caller gets a plain 403.
func TestBidiTamperedBeforeAnswer(t *testing.T) {
	t.Parallel()
	h := newBidiHarness(t, sim.Options{})
	b := newRawBidi(t, h.gateway.URL, "nova", http.Header{sim.HeaderLatency: {"1h"}})
	event := bidisdk.InputEvent(t, bidisdk.TextInput("hi"))
	bad := authn.NewChunkSigner(authn.ChunkSignerOptions{
		Credentials: aws.Credentials{AccessKeyID: devAKID, SecretAccessKey: "not-the-secret"}, Region: "us-east-1", Seed: b.seed,
	})
	wrote := make(chan error, 1)
	go func() { wrote <- bad.WriteEnvelope(b.body, event) }() // the gateway reads it before it answers
	b.do(t, h2cHTTPClient(t))
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	if b.resp.StatusCode != 403 || b.resp.Header.Get("X-Amzn-Errortype") != "InvalidSignatureException" {
		t.Fatalf("got %d %s", b.resp.StatusCode, b.resp.Header.Get("X-Amzn-Errortype"))
	}
	if s := h.quota.settlements(); len(s) != 1 || !s[0].released {
		t.Fatalf("reservation not released: %+v", s)
	}
}

func TestBidiRefusals(t *testing.T) {
	t.Parallel()
	h := newBidiHarness(t, sim.Options{})
	h2c := h2cHTTPClient(t)
	tests := []struct {
		name       string
		client     *http.Client
		header     http.Header
		status     int
		errType    string
		message    string
		reachesSim bool
	}{
		{"HTTP/1.1", http.DefaultClient, nil, 400, "ValidationException", "HTTP/2", false},
		{"body not signed as events", h2c, http.Header{"X-Amz-Content-Sha256": {authn.UnsignedPayload}}, 403, "InvalidSignatureException", authn.StreamingEvents, false},
		{"upstream error passes through", h2c, http.Header{sim.HeaderFault: {sim.FaultThrottle}}, 429, "ThrottlingException", "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := len(h.sim.Requests())
			b := openRawBidi(t, h.gateway.URL, "nova", tc.client, tc.header)
			body, _ := io.ReadAll(b.resp.Body)
			if b.resp.StatusCode != tc.status || b.resp.Header.Get("X-Amzn-Errortype") != tc.errType || !strings.Contains(string(body), tc.message) {
				t.Fatalf("got %d %s %s", b.resp.StatusCode, b.resp.Header.Get("X-Amzn-Errortype"), body)
			}
			if reached := len(h.sim.Requests()) > before; reached != tc.reachesSim {
				t.Fatalf("reached the simulator: %v", reached)
			}
		})
	}
	for _, s := range h.quota.settlements() {
		if !s.released {
			t.Fatalf("a refused session was charged: %+v", s)
		}
	}
}

// TestBidiClientDisconnect: the client goes away mid-session; the gateway ends
// the upstream's input properly, reads the usage it then reports, settles it,
// and leaves nothing running (TestMain's leak check).
func TestBidiClientDisconnect(t *testing.T) {
	t.Parallel()
	h := newBidiHarness(t, sim.Options{})
	ctx, cancel := context.WithCancel(t.Context())
	out, err := h.sdk(t).InvokeModelWithBidirectionalStream(ctx, &bedrockruntime.InvokeModelWithBidirectionalStreamInput{ModelId: aws.String("nova")})
	if err != nil {
		t.Fatal(err)
	}
	stream := out.GetStream()
	if err := bidisdk.Send(ctx, stream, bidisdk.TextInput("is anyone there")); err != nil {
		t.Fatal(err)
	}
	bidisdk.Next(t, stream)
	cancel()
	stream.Close()
	wait.For(t, "a settlement after the client went away", 10*time.Second, func() bool { return len(h.quota.settlements()) > 0 })
	s := h.quota.settlements()[0]
	want := bedrock.Usage{InputTokens: 3, OutputTokens: 3}
	if s.released || s.usage != want || h.sim.Totals() != want {
		t.Fatalf("settled %+v, simulator reported %+v, want %+v", s, h.sim.Totals(), want)
	}
}

// TestBidiMidstreamException: a model exception in the middle of a session
// ends it as it ends the other streams: the client sees the exception, the
// call is charged as failed, and the failure is counted by its reason.
func TestBidiMidstreamException(t *testing.T) {
	t.Parallel()
	h := newBidiHarness(t, sim.Options{})
	ctx := t.Context()
	c := h.client(t, devAKID, devSecret, func(o *bedrockruntime.Options) { o.HTTPClient = h2cHTTPClient(t) }, sdktest.WithHeaders("X-Sim-Fault", "midstream"))
	out, err := c.InvokeModelWithBidirectionalStream(ctx, &bedrockruntime.InvokeModelWithBidirectionalStreamInput{ModelId: aws.String("nova")})
	if err != nil {
		t.Fatal(err)
	}
	stream := out.GetStream()
	defer stream.Close()
	if err := bidisdk.Send(ctx, stream, bidisdk.TextInput("hello there")); err != nil {
		t.Fatal(err)
	}
	if got := bidisdk.TextOutput(bidisdk.Next(t, stream)); got != "hello there" {
		t.Fatalf("echo %q", got)
	}
	if doc := bidisdk.Next(t, stream); doc != nil {
		t.Fatalf("event after the exception: %v", doc)
	}
	if apiErrorCode(stream.Err()) != "InternalServerException" {
		t.Fatalf("stream ended with %v, want the model's exception", stream.Err())
	}
	stream.Close()
	// The handler settles before it returns; the gateway's Close waits for it.
	h.gateway.Close()
	s := h.quota.settlements()
	if len(s) != 1 || s[0].released || !s[0].usage.Failed || !s[0].usage.Estimated {
		t.Fatalf("settlements %+v, want one charged as failed", s)
	}
	if got := upstreamFailures(t, h.handler.opts.Metrics, "midstream_exception"); got != 1 {
		t.Fatalf("midstream_exception failures counted %v, want 1", got)
	}
}

func TestBidiUpstreamUnreachable(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{upstream: "http://127.0.0.1:1"})
	b := openRawBidi(t, h.gateway.URL, "nova", h2cHTTPClient(t), nil)
	if b.resp.StatusCode != 503 || b.resp.Header.Get("X-Amzn-Errortype") != "ServiceUnavailableException" {
		t.Fatalf("got %d %s", b.resp.StatusCode, b.resp.Header.Get("X-Amzn-Errortype"))
	}
	if s := h.quota.settlements(); len(s) != 1 || !s[0].released {
		t.Fatalf("reservation not released: %+v", s)
	}
}
