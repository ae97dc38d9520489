package authn

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	smithyes "github.com/aws/smithy-go/eventstream"

	"github.com/bedrock-gateway/gateway/internal/testutil/bidisdk"
)

// sdkMessageSigner is exactly how aws-sdk-go-v2 adapts v4.StreamSigner to
// smithy-go's SigningWriter for bedrockruntime's input streams.
type sdkMessageSigner struct{ s *v4.StreamSigner }

func (a sdkMessageSigner) SignMessage(headers, payload []byte, at time.Time) ([]byte, error) {
	return a.s.GetSignature(context.Background(), headers, payload, at)
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

// bidiRequest signs a bidirectional-stream request as the SDK does and
// returns the server's Result and the SDK's seed signature.
func bidiRequest(t *testing.T, v *Verifier, lookup Lookup, creds aws.Credentials, at time.Time) (*Result, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://"+testHost+"/model/amazon.nova-sonic-v1%3A0/invoke-with-bidirectional-stream", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/vnd.amazon.eventstream")
	req.Header.Set("X-Amz-Content-Sha256", StreamingEvents)
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, StreamingEvents, "bedrock", "us-west-2", at); err != nil {
		t.Fatal(err)
	}
	seed, err := v4.GetSignedRequestSignature(req)
	if err != nil {
		t.Fatal(err)
	}
	sr, _ := overTheWire(t, req)
	res, err := v.Authenticate(sr, "not-the-body-hash", lookup)
	if err != nil {
		t.Fatal(err)
	}
	if res.PayloadHash != StreamingEvents {
		t.Fatalf("PayloadHash = %q", res.PayloadHash)
	}
	return res, seed
}

func decodeAll(t *testing.T, b []byte) []eventstream.Message {
	t.Helper()
	var out []eventstream.Message
	r := bytes.NewReader(b)
	for r.Len() > 0 {
		m, err := eventstream.NewDecoder().Decode(r, nil)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

func TestChunkVerifierSDKChain(t *testing.T) {
	t.Parallel()
	v := NewVerifier(Options{}) // smithy-go's SigningWriter stamps envelopes with the wall clock
	lookup := testLookup(t)
	creds := aws.Credentials{AccessKeyID: testAKID, SecretAccessKey: testSecret}
	res, seed := bidiRequest(t, v, lookup, creds, time.Now())

	var body bytes.Buffer
	w := smithyes.NewSigningWriter(nopCloser{&body}, sdkMessageSigner{v4.NewStreamSigner(creds, "bedrock", "us-west-2", seed)})
	inner := [][]byte{bidisdk.InputEvent(t, []byte("one")), bidisdk.InputEvent(t, []byte("two")), bidisdk.InputEvent(t, []byte("three"))}
	for _, in := range inner {
		if _, err := w.Write(in); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	wire := body.Bytes()

	t.Run("valid", func(t *testing.T) {
		t.Parallel()
		cv, err := v.NewChunkVerifier(res)
		if err != nil {
			t.Fatal(err)
		}
		r := bytes.NewReader(wire)
		for i, want := range inner {
			got, end, err := cv.Next(r)
			if err != nil || end || !bytes.Equal(got, want) {
				t.Fatalf("envelope %d: end=%v err=%v payload ok=%v", i, end, err, bytes.Equal(got, want))
			}
		}
		if _, end, err := cv.Next(r); err != nil || !end {
			t.Fatalf("final envelope: end=%v err=%v", end, err)
		}
		if _, _, err := cv.Next(r); !errors.Is(err, io.EOF) {
			t.Fatalf("after the end: %v, want io.EOF", err)
		}
	})

	tamper := []struct {
		name string
		edit func([]eventstream.Message) []eventstream.Message
	}{
		{"payload changed", func(ms []eventstream.Message) []eventstream.Message {
			ms[1].Payload = bidisdk.InputEvent(t, []byte("TWO"))
			return ms
		}},
		{"reordered", func(ms []eventstream.Message) []eventstream.Message {
			ms[0], ms[1] = ms[1], ms[0]
			return ms
		}},
		{"dropped", func(ms []eventstream.Message) []eventstream.Message { return append(ms[:1], ms[2:]...) }},
		{"date changed", func(ms []eventstream.Message) []eventstream.Message {
			d := time.Time(ms[1].Headers.Get(":date").(eventstream.TimestampValue))
			ms[1].Headers.Set(":date", eventstream.TimestampValue(d.Add(time.Second)))
			return ms
		}},
		{"header added", func(ms []eventstream.Message) []eventstream.Message {
			ms[1].Headers.Set(":extra", eventstream.StringValue("x"))
			return ms
		}},
	}
	for _, tc := range tamper {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cv, err := v.NewChunkVerifier(res)
			if err != nil {
				t.Fatal(err)
			}
			var failed error
			for _, m := range tc.edit(decodeAll(t, wire)) {
				if _, _, err := cv.Verify(m); err != nil {
					failed = err
					break
				}
			}
			wantBedrockError(t, failed, "InvalidSignatureException", msgMismatch)
		})
	}

	t.Run("wrong seed", func(t *testing.T) {
		t.Parallel()
		other := *res
		other.Signature = "00" + res.Signature[2:]
		cv, err := v.NewChunkVerifier(&other)
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = cv.Next(bytes.NewReader(wire))
		wantBedrockError(t, err, "InvalidSignatureException", msgMismatch)
	})
}

func TestChunkSignerResignsAcrossMidnight(t *testing.T) {
	t.Parallel()
	// The hub re-signs envelopes with its own key; a verifier holding the
	// hub's secret must accept them, also when the stream crosses midnight
	// (the SDK's StreamSigner then scopes to the new day).
	start := time.Date(2026, 1, 31, 23, 59, 58, 0, time.UTC)
	clock := start
	now := func() time.Time { return clock }
	v := NewVerifier(Options{Now: now})
	hub := &Credential{ID: "AKIAHUB0000000000001", Kind: KindSigV4, Secret: "hub-secret"}
	lookup, err := NewStaticLookup(hub)
	if err != nil {
		t.Fatal(err)
	}
	res, seed := bidiRequest(t, v, lookup, aws.Credentials{AccessKeyID: hub.ID, SecretAccessKey: hub.Secret}, start)
	s := NewChunkSigner(ChunkSignerOptions{Credentials: aws.Credentials{AccessKeyID: hub.ID, SecretAccessKey: hub.Secret},
		Region: "us-west-2", Seed: seed, Now: now})
	var body bytes.Buffer
	inner := [][]byte{bidisdk.InputEvent(t, []byte("a")), bidisdk.InputEvent(t, []byte("b")), bidisdk.InputEvent(t, []byte("c"))}
	for _, in := range inner {
		if err := s.WriteEnvelope(&body, in); err != nil {
			t.Fatal(err)
		}
		clock = clock.Add(time.Second)
	}
	if err := s.WriteEnvelope(&body, nil); err != nil {
		t.Fatal(err)
	}
	cv, err := v.NewChunkVerifier(res)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range inner {
		got, _, err := cv.Next(&body)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("envelope %d: %v", i, err)
		}
	}
	if _, end, err := cv.Next(&body); err != nil || !end {
		t.Fatalf("end: %v %v", end, err)
	}
	if cv.lastKeyDate != "20260201" {
		t.Errorf("chain ended with the key of %s, want 20260201", cv.lastKeyDate)
	}
}

func TestChunkVerifierRefusesAPIKeys(t *testing.T) {
	t.Parallel()
	if _, err := testVerifier().NewChunkVerifier(&Result{Credential: &Credential{Kind: KindAPIKey}}); err == nil {
		t.Fatal("API key result accepted for a signed stream")
	}
}
