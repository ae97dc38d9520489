package backendauth

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/bedrock-gateway/gateway/internal/authn"
)

const (
	hubAKID   = "AKIDHUB0000000000001"
	hubSecret = "hub-secret-0000000000000000000000000000"
)

// hub is what Bedrock would check the gateway's requests against.
func hub(t *testing.T) (*authn.Verifier, *authn.StaticLookup) {
	t.Helper()
	l, err := authn.NewStaticLookup(&authn.Credential{ID: hubAKID, Account: "111111111111", Kind: authn.KindSigV4, Secret: hubSecret})
	if err != nil {
		t.Fatal(err)
	}
	return authn.NewVerifier(authn.Options{}), l
}

func newSigner(t *testing.T, p aws.CredentialsProvider) *Signer {
	t.Helper()
	s, err := New(Options{Credentials: p})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestSignBody: a request signed over its whole body's hash passes the
// upstream's check, and one whose body changed after signing does not.
func TestSignBody(t *testing.T) {
	t.Parallel()
	v, l := hub(t)
	tests := []struct {
		name   string
		body   string
		sent   string // what actually travels
		method string
		ok     bool
	}{
		{name: "body", body: `{"messages":[]}`, sent: `{"messages":[]}`, method: http.MethodPost, ok: true},
		{name: "empty body", method: http.MethodGet, ok: true},
		{name: "body replaced", body: `{"a":1}`, sent: `{"a":2}`, method: http.MethodPost},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			checked := make(chan error, 1)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				checked <- authn.VerifyStatic(v, r, body, l)
			}))
			defer srv.Close()
			req, err := http.NewRequest(tt.method, srv.URL+"/model/m/invoke", bytes.NewReader([]byte(tt.sent)))
			if err != nil {
				t.Fatal(err)
			}
			if tt.sent == "" {
				req.Body, req.ContentLength = nil, 0
			}
			sum := sha256.Sum256([]byte(tt.body))
			if err := newSigner(t, credentials.NewStaticCredentialsProvider(hubAKID, hubSecret, "")).Sign(t.Context(), req, hex.EncodeToString(sum[:]), "us-east-1"); err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if verr := <-checked; (verr == nil) != tt.ok {
				t.Fatalf("upstream check: %v, want ok=%v", verr, tt.ok)
			}
		})
	}
}

// TestSignEvents: the request is signed for a streamed body and the returned
// ChunkSigner continues its chain: the upstream verifies every envelope.
func TestSignEvents(t *testing.T) {
	t.Parallel()
	v, l := hub(t)
	events := [][]byte{[]byte(`{"event":1}`), []byte(`{"event":2}`)}
	pr, pw := io.Pipe()
	req, err := http.NewRequest(http.MethodPost, "http://bedrock.test/model/m/invoke-with-bidirectional-stream", pr)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := newSigner(t, credentials.NewStaticCredentialsProvider(hubAKID, hubSecret, "")).SignEvents(t.Context(), req, "us-east-1")
	if err != nil {
		t.Fatal(err)
	}
	if got := req.Header.Get("X-Amz-Content-Sha256"); got != authn.StreamingEvents {
		t.Fatalf("X-Amz-Content-Sha256 %q", got)
	}
	go func() {
		for _, e := range events {
			_ = cs.WriteEnvelope(pw, e)
		}
		_ = cs.WriteEnvelope(pw, nil)
		_ = pw.Close()
	}()
	// The upstream's side: the request as a server receives it.
	in := httptest.NewRequest(req.Method, req.URL.RequestURI(), req.Body)
	in.Host = req.Host
	in.Header = req.Header.Clone()
	res, err := v.Authenticate(in, authn.StreamingEvents, l)
	if err != nil {
		t.Fatal(err)
	}
	cv, err := v.NewChunkVerifier(res)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		payload, end, err := cv.Next(in.Body)
		if err != nil {
			t.Fatalf("envelope %d: %v", i, err)
		}
		if end {
			if i != len(events) {
				t.Fatalf("chain ended after %d events, want %d", i, len(events))
			}
			break
		}
		if !bytes.Equal(payload, events[i]) {
			t.Fatalf("event %d: %s", i, payload)
		}
	}
}

type failingProvider struct{}

func (failingProvider) Retrieve(context.Context) (aws.Credentials, error) {
	return aws.Credentials{}, errors.New("no instance profile")
}

// TestCredentialsFailure: a failure to obtain the hub's credentials is told
// apart from a request that could not be signed.
func TestCredentialsFailure(t *testing.T) {
	t.Parallel()
	s := newSigner(t, failingProvider{})
	req := httptest.NewRequest(http.MethodPost, "http://bedrock.test/model/m/converse", nil)
	if err := s.Sign(t.Context(), req, "", "us-east-1"); !errors.Is(err, ErrCredentials) {
		t.Fatalf("Sign: %v", err)
	}
	if _, err := s.SignEvents(t.Context(), req, "us-east-1"); !errors.Is(err, ErrCredentials) {
		t.Fatalf("SignEvents: %v", err)
	}
	if _, err := New(Options{}); err == nil {
		t.Fatal("New without credentials succeeded")
	}
}
