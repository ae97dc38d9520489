package sim

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"

	"github.com/bedrock-gateway/gateway/internal/authn"
	"github.com/bedrock-gateway/gateway/internal/bedrock"
	"github.com/bedrock-gateway/gateway/internal/testutil/bidisdk"
)

const (
	bidiModel  = "amazon.nova-sonic-v1:0"
	bidiAKID   = "AKIDSIM0000000000001"
	bidiSecret = "sim-secret-000000000000000000000000000"
)

// newH2CServer serves s over HTTP/1.1 and h2c (prior knowledge).
func newH2CServer(t *testing.T, s *Simulator) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(s)
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	srv.Config.Protocols = &p
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

// h2cClient speaks only h2c, as the SDK needs for a bidirectional stream over http://.
func h2cClient(t *testing.T) *http.Client {
	t.Helper()
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Protocols: &p}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

func bidiClient(t *testing.T, url string) *bedrockruntime.Client {
	t.Helper()
	return bedrockruntime.New(bedrockruntime.Options{
		BaseEndpoint: aws.String(url),
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider(bidiAKID, bidiSecret, ""),
		Retryer:      aws.NopRetryer{},
		HTTPClient:   h2cClient(t),
	})
}

// verifyStream is the check a deployment wires: authn's request verification
// plus its chunk-signature chain. verified counts envelopes that passed.
func verifyStream(t *testing.T, verified *atomic.Int64) func(*http.Request) (func(io.Reader) ([]byte, bool, error), error) {
	t.Helper()
	lookup, err := authn.NewStaticLookup(&authn.Credential{ID: bidiAKID, Kind: authn.KindSigV4, Secret: bidiSecret})
	if err != nil {
		t.Fatal(err)
	}
	v := authn.NewVerifier(authn.Options{})
	return func(r *http.Request) (func(io.Reader) ([]byte, bool, error), error) {
		res, err := v.Authenticate(r, authn.StreamingEvents, lookup)
		if err != nil {
			return nil, err
		}
		cv, err := v.NewChunkVerifier(res)
		if err != nil {
			return nil, err
		}
		return func(body io.Reader) ([]byte, bool, error) {
			p, end, err := cv.Next(body)
			if err == nil {
				verified.Add(1)
			}
			return p, end, err
		}, nil
	}
}

func TestBidiEchoWithSDK(t *testing.T) {
	t.Parallel()
	for _, verify := range []bool{false, true} {
		t.Run(map[bool]string{false: "unverified", true: "verified"}[verify], func(t *testing.T) {
			t.Parallel()
			var verified atomic.Int64
			opts := Options{}
			if verify {
				opts.VerifyStream = verifyStream(t, &verified)
			}
			s := New(opts)
			srv := newH2CServer(t, s)
			ctx := t.Context()
			out, err := bidiClient(t, srv.URL).InvokeModelWithBidirectionalStream(ctx, &bedrockruntime.InvokeModelWithBidirectionalStreamInput{ModelId: aws.String(bidiModel)})
			if err != nil {
				t.Fatal(err)
			}
			stream := out.GetStream()
			defer stream.Close()
			inputs := []string{"hello there", "how are you today", "bye"}
			// An event without text (audio, say) is counted but not answered.
			if err := bidisdk.Send(ctx, stream, []byte(`{"event":{"audioInput":{"content":"AAAA"}}}`)); err != nil {
				t.Fatal(err)
			}
			for _, in := range inputs {
				if err := bidisdk.Send(ctx, stream, bidisdk.TextInput(in)); err != nil {
					t.Fatal(err)
				}
				// Full duplex: each answer arrives before the next input is sent.
				doc := bidisdk.Next(t, stream)
				if got := jstr(doc, "event", "textOutput", "content"); got != in {
					t.Fatalf("echo %q, want %q", got, in)
				}
			}
			if err := stream.Writer.Close(); err != nil {
				t.Fatal(err)
			}
			last := bidisdk.Next(t, stream)
			if jstr(last, "event", "completionEnd", "stopReason") != "END_TURN" ||
				jnum(last, "amazon-bedrock-invocationMetrics", "inputTokenCount") != 7 ||
				jnum(last, "amazon-bedrock-invocationMetrics", "outputTokenCount") != 7 {
				t.Fatalf("final chunk %v", last)
			}
			if doc := bidisdk.Next(t, stream); doc != nil {
				t.Fatalf("event after the final chunk: %v", doc)
			}
			if err := stream.Err(); err != nil {
				t.Fatal(err)
			}
			if got, want := s.Totals(), (bedrock.Usage{InputTokens: 7, OutputTokens: 7}); got != want {
				t.Fatalf("Totals() = %+v, want %+v", got, want)
			}
			obs := s.Requests()[0]
			if obs.Op != bedrock.OpInvokeModelWithBidirectionalStream || obs.ModelID != bidiModel || obs.Status != 200 || obs.Usage.OutputTokens != 7 {
				t.Fatalf("observed %+v", obs)
			}
			if lines := strings.Split(strings.TrimSpace(string(obs.Body)), "\n"); len(lines) != 4 || lines[1] != string(bidisdk.TextInput(inputs[0])) {
				t.Fatalf("observed body %q", obs.Body)
			}
			if verify && verified.Load() != 5 { // four events and the closing envelope
				t.Fatalf("verified %d envelopes, want 5", verified.Load())
			}
		})
	}
}

// rawBidi opens a bidirectional stream by hand: the request is signed as the
// SDK signs it and its envelopes come from the returned signer, so tests can
// break the chain.
type rawBidi struct {
	resp *http.Response
	body *io.PipeWriter
	seed []byte
}

func openRawBidi(t *testing.T, url string, header http.Header) *rawBidi {
	t.Helper()
	pr, pw := io.Pipe()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url+"/model/"+bedrock.EscapeLabel(bidiModel)+"/invoke-with-bidirectional-stream", pr)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/vnd.amazon.eventstream")
	req.Header.Set("X-Amz-Content-Sha256", authn.StreamingEvents)
	creds := aws.Credentials{AccessKeyID: bidiAKID, SecretAccessKey: bidiSecret}
	if err := v4.NewSigner().SignHTTP(t.Context(), creds, req, authn.StreamingEvents, "bedrock", "us-east-1", time.Now().UTC()); err != nil {
		t.Fatal(err)
	}
	seed, err := v4.GetSignedRequestSignature(req)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := h2cClient(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pw.Close(); resp.Body.Close() })
	return &rawBidi{resp: resp, body: pw, seed: seed}
}

func (b *rawBidi) signer(secret string, seed []byte) *authn.ChunkSigner {
	return authn.NewChunkSigner(authn.ChunkSignerOptions{
		Credentials: aws.Credentials{AccessKeyID: bidiAKID, SecretAccessKey: secret}, Region: "us-east-1", Seed: seed,
	})
}

func TestBidiBrokenChain(t *testing.T) {
	t.Parallel()
	var verified atomic.Int64
	s := New(Options{VerifyStream: verifyStream(t, &verified)})
	srv := newH2CServer(t, s)
	b := openRawBidi(t, srv.URL, nil)
	if b.resp.StatusCode != 200 {
		t.Fatalf("status %d", b.resp.StatusCode)
	}
	good := b.signer(bidiSecret, b.seed)
	if err := good.WriteEnvelope(b.body, bidisdk.InputEvent(t, bidisdk.TextInput("one two"))); err != nil {
		t.Fatal(err)
	}
	dec := eventstream.NewDecoder()
	msg, err := dec.Decode(b.resp.Body, nil)
	if err != nil || msg.Headers.Get(":event-type").String() != "chunk" {
		t.Fatalf("first answer: %v %v", msg.Headers, err)
	}
	// The next envelope is signed with another key: the chain breaks.
	bad := b.signer("not-the-secret", b.seed)
	if err := bad.WriteEnvelope(b.body, bidisdk.InputEvent(t, bidisdk.TextInput("three"))); err != nil {
		t.Fatal(err)
	}
	msg, err = dec.Decode(b.resp.Body, nil)
	if err != nil || msg.Headers.Get(":message-type").String() != "exception" ||
		msg.Headers.Get(":exception-type").String() != "invalidSignatureException" {
		t.Fatalf("after a bad envelope: %v %v", msg.Headers, err)
	}
	if _, err := dec.Decode(b.resp.Body, nil); !errors.Is(err, io.EOF) {
		t.Fatalf("stream did not end after the exception: %v", err)
	}
	if got := s.Totals(); got != (bedrock.Usage{}) {
		t.Fatalf("a broken session reported usage %+v", got)
	}
	if verified.Load() != 1 {
		t.Fatalf("verified %d envelopes, want 1", verified.Load())
	}
}

func TestBidiRefusals(t *testing.T) {
	t.Parallel()
	var verified atomic.Int64
	s := New(Options{VerifyStream: verifyStream(t, &verified)})
	srv := newH2CServer(t, s)
	path := "/model/" + bedrock.EscapeLabel(bidiModel) + "/invoke-with-bidirectional-stream"

	t.Run("HTTP/1.1", func(t *testing.T) {
		resp, err := http.Post(srv.URL+path, "application/vnd.amazon.eventstream", strings.NewReader(""))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 400 || resp.Header.Get("X-Amzn-Errortype") != "ValidationException" {
			t.Fatalf("got %d %s", resp.StatusCode, resp.Header.Get("X-Amzn-Errortype"))
		}
	})
	t.Run("unsigned", func(t *testing.T) {
		resp, err := h2cClient(t).Post(srv.URL+path, "application/vnd.amazon.eventstream", strings.NewReader(""))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 403 {
			t.Fatalf("got %d %s", resp.StatusCode, resp.Header.Get("X-Amzn-Errortype"))
		}
	})
	t.Run("fault before headers", func(t *testing.T) {
		b := openRawBidi(t, srv.URL, http.Header{HeaderFault: {FaultThrottle}})
		if b.resp.StatusCode != 429 || b.resp.Header.Get("X-Amzn-Errortype") != "ThrottlingException" {
			t.Fatalf("got %d %s", b.resp.StatusCode, b.resp.Header.Get("X-Amzn-Errortype"))
		}
	})
	t.Run("midstream fault", func(t *testing.T) {
		b := openRawBidi(t, srv.URL, http.Header{HeaderFault: {FaultMidstream}})
		w := b.signer(bidiSecret, b.seed)
		if err := w.WriteEnvelope(b.body, bidisdk.InputEvent(t, bidisdk.TextInput("hi"))); err != nil {
			t.Fatal(err)
		}
		dec := eventstream.NewDecoder()
		if msg, err := dec.Decode(b.resp.Body, nil); err != nil || msg.Headers.Get(":event-type").String() != "chunk" {
			t.Fatalf("first answer: %v", err)
		}
		msg, err := dec.Decode(b.resp.Body, nil)
		if err != nil || msg.Headers.Get(":exception-type").String() != "internalServerException" {
			t.Fatalf("fault: %v %v", msg.Headers, err)
		}
	})
	if got := s.Totals(); got != (bedrock.Usage{}) {
		t.Fatalf("Totals() = %+v", got)
	}
}

func TestBidiClientGoesAway(t *testing.T) {
	t.Parallel()
	s := New(Options{})
	srv := newH2CServer(t, s)
	ctx, cancel := context.WithCancel(t.Context())
	out, err := bidiClient(t, srv.URL).InvokeModelWithBidirectionalStream(ctx, &bedrockruntime.InvokeModelWithBidirectionalStreamInput{ModelId: aws.String(bidiModel)})
	if err != nil {
		t.Fatal(err)
	}
	stream := out.GetStream()
	if err := bidisdk.Send(ctx, stream, bidisdk.TextInput("are you there")); err != nil {
		t.Fatal(err)
	}
	bidisdk.Next(t, stream)
	cancel() // the handler now waits for input that never comes
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

func TestBidiInputText(t *testing.T) {
	t.Parallel()
	tests := []struct {
		native, want string
	}{
		{`{"event":{"textInput":{"content":"a b c"}}}`, "a b c "},
		{`{"event":{"audioInput":{"content":"QUJD"}}}`, ""},
		{`{"inputText":"x","messages":[{"content":[{"text":"y z"}]}]}`, "x y z "},
		{`not json`, ""},
	}
	for _, tc := range tests {
		text, chunk, be := bidiInput(bidisdk.InputEvent(t, []byte(tc.native)))
		if be != nil || text != tc.want || string(chunk) != tc.native {
			t.Errorf("%s: text %q chunk %q err %v", tc.native, text, chunk, be)
		}
	}
	if _, _, be := bidiInput([]byte("garbage")); be == nil {
		t.Error("garbage accepted as an input event")
	}
}

func FuzzBidiInput(f *testing.F) {
	f.Add([]byte(`{"event":{"textInput":{"content":"a b"}}}`), true)
	f.Add([]byte(`[{"text":"x"},{"prompt":3}]`), true)
	f.Add([]byte("\x00\x00\x00\x10\x00\x00\x00\x00garbage"), false)
	f.Fuzz(func(t *testing.T, b []byte, wrap bool) {
		payload := b
		if wrap {
			payload = bidisdk.InputEvent(t, b)
		}
		text, chunk, be := bidiInput(payload)
		if be != nil {
			if text != "" || be.Status != 400 {
				t.Fatalf("error %v with text %q", be, text)
			}
			return
		}
		if wrap && !bytes.Equal(chunk, b) {
			t.Fatalf("chunk %q, want %q", chunk, b)
		}
	})
}
