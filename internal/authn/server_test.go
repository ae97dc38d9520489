package authn

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/auth/bearer"

	"github.com/bedrock-gateway/gateway/internal/bedrock"
)

// These tests put real servers between the signer and the verifier, so the
// request is exactly what net/http's HTTP/1.1, h2c and h2 servers hand a
// handler (RequestURI from the request line or :path, Host from Host or
// :authority).

type seen struct {
	mu         sync.Mutex
	protoMajor int
	requestURI string
	cred       string
}

func (s *seen) get() (int, string, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.protoMajor, s.requestURI, s.cred
}

func authServer(t *testing.T, v *Verifier, creds Lookup, mode string) (*httptest.Server, *http.Client, *seen) {
	t.Helper()
	got := &seen{}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		res, err := v.Authenticate(r, sha256Hex(body), creds)
		got.mu.Lock()
		got.protoMajor, got.requestURI = r.ProtoMajor, r.RequestURI
		if res != nil {
			got.cred = res.Credential.ID
		}
		got.mu.Unlock()
		if err != nil {
			var be *bedrock.Error
			if !errors.As(err, &be) {
				be = bedrock.Internal(err.Error())
			}
			bedrock.WriteError(w, "req-1", be)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, "{}")
	})
	srv := httptest.NewUnstartedServer(h)
	var client *http.Client
	switch mode {
	case "h1":
		srv.Start()
		client = srv.Client()
	case "h2c":
		srv.Config.Protocols = new(http.Protocols)
		srv.Config.Protocols.SetHTTP1(true)
		srv.Config.Protocols.SetUnencryptedHTTP2(true)
		srv.Start()
		p := new(http.Protocols)
		p.SetUnencryptedHTTP2(true)
		client = &http.Client{Transport: &http.Transport{Protocols: p}}
	case "h1-tls":
		srv.StartTLS()
		client = srv.Client()
		client.Transport.(*http.Transport).TLSClientConfig.NextProtos = []string{"http/1.1"}
	case "h2":
		srv.EnableHTTP2 = true
		srv.StartTLS()
		client = srv.Client()
	default:
		t.Fatalf("unknown mode %q", mode)
	}
	t.Cleanup(func() {
		client.CloseIdleConnections()
		srv.Close()
	})
	return srv, client, got
}

func wantProto(mode string) int {
	if mode == "h2c" || mode == "h2" {
		return 2
	}
	return 1
}

func TestAuthenticateThroughServers(t *testing.T) {
	t.Parallel()
	lookup := testLookup(t)
	v := NewVerifier(Options{}) // wall clock: the clients sign with it
	for _, mode := range []string{"h1", "h2c", "h2"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			srv, client, got := authServer(t, v, lookup, mode)
			target := "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Aapplication-inference-profile%2Fabcd1234efgh/invoke?trace=a%2Fb&x=1"
			send := func(t *testing.T, prepare func(*http.Request), signer func(*http.Request)) *http.Response {
				t.Helper()
				req, err := http.NewRequest(http.MethodPost, srv.URL+target, strings.NewReader(`{"prompt":"hi"}`))
				if err != nil {
					t.Fatal(err)
				}
				req.Header.Set("Content-Type", "application/json")
				if prepare != nil {
					prepare(req)
				}
				signer(req)
				resp, err := client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				return resp
			}
			goSign := func(req *http.Request) {
				creds := aws.Credentials{AccessKeyID: testAKID, SecretAccessKey: testSecret}
				if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, sha256Hex([]byte(`{"prompt":"hi"}`)), "bedrock", "us-east-1", time.Now()); err != nil {
					t.Fatal(err)
				}
			}

			t.Run("go signer", func(t *testing.T) {
				resp := send(t, nil, goSign)
				proto, uri, cred := got.get()
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("status %d (%s)", resp.StatusCode, resp.Header.Get("X-Amzn-Errortype"))
				}
				if proto != wantProto(mode) || uri != target || cred != testAKID {
					t.Fatalf("server saw HTTP/%d %q as %q", proto, uri, cred)
				}
			})
			t.Run("go signer tampered", func(t *testing.T) {
				resp := send(t, nil, func(req *http.Request) {
					goSign(req)
					req.Header.Set("Content-Type", "text/plain")
				})
				if resp.StatusCode != http.StatusForbidden || resp.Header.Get("X-Amzn-Errortype") != "InvalidSignatureException" {
					t.Fatalf("status %d %s, want 403 InvalidSignatureException", resp.StatusCode, resp.Header.Get("X-Amzn-Errortype"))
				}
			})
			t.Run("go signer with :authority", func(t *testing.T) {
				// The official signer signs every header in the map; giving it a
				// ":authority" entry makes it sign that line as JS does on HTTP/2
				// (beside host). The entry is removed before sending: it travels
				// as the pseudo-header (or Host on HTTP/1.1).
				resp := send(t, func(req *http.Request) { req.Header[":authority"] = []string{req.URL.Host} }, func(req *http.Request) {
					goSign(req)
					if !strings.Contains(req.Header.Get("Authorization"), "SignedHeaders=:authority;") {
						t.Fatalf("signer did not sign :authority: %s", req.Header.Get("Authorization"))
					}
					delete(req.Header, ":authority")
				})
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("status %d (%s)", resp.StatusCode, resp.Header.Get("X-Amzn-Errortype"))
				}
			})
			t.Run("JS-shaped :authority without host", func(t *testing.T) {
				// The exact JS h2 shape (":authority" and no "host",
				// x-amz-content-sha256 signed) is built by handSigned: no Go
				// signer produces it.
				resp := send(t, nil, func(req *http.Request) {
					amzDate := time.Now().UTC().Format("20060102T150405Z")
					hash := sha256Hex([]byte(`{"prompt":"hi"}`))
					req.Header.Set("X-Amz-Date", amzDate)
					req.Header.Set("X-Amz-Content-Sha256", hash)
					req.Header.Set("Authorization", handSigned(t, "POST",
						"/model/arn%253Aaws%253Abedrock%253Aus-east-1%253A123456789012%253Aapplication-inference-profile%252Fabcd1234efgh/invoke",
						"trace=a%2Fb&x=1",
						[][2]string{{":authority", req.URL.Host}, {"content-type", "application/json"}, {"x-amz-content-sha256", hash}, {"x-amz-date", amzDate}},
						hash, amzDate, "us-east-1"))
				})
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("status %d (%s)", resp.StatusCode, resp.Header.Get("X-Amzn-Errortype"))
				}
			})
		})
	}
}

func sdkClient(t *testing.T, srv *httptest.Server, client *http.Client, optFns ...func(*bedrockruntime.Options)) *bedrockruntime.Client {
	t.Helper()
	o := bedrockruntime.Options{
		Region:           "us-east-1",
		BaseEndpoint:     aws.String(srv.URL),
		HTTPClient:       client,
		RetryMaxAttempts: 1,
		Credentials:      credentials.NewStaticCredentialsProvider(testAKID, testSecret, ""),
	}
	return bedrockruntime.New(o, optFns...)
}

func TestAuthenticateGoSDK(t *testing.T) {
	t.Parallel()
	lookup := testLookup(t)
	apiKey, _, err := NewAPIKey()
	if err != nil {
		t.Fatal(err)
	}
	if err := lookup.AddAPIKey(HashAPIKey(apiKey), &Credential{ID: "key-sdk", Account: "333333333333", Kind: KindAPIKey}); err != nil {
		t.Fatal(err)
	}
	v := NewVerifier(Options{})
	arn := "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abcd1234efgh"
	calls := []struct {
		name string
		call func(ctx context.Context, c *bedrockruntime.Client) error
	}{
		{"InvokeModel ARN", func(ctx context.Context, c *bedrockruntime.Client) error {
			_, err := c.InvokeModel(ctx, &bedrockruntime.InvokeModelInput{ModelId: aws.String(arn), Body: []byte(`{"max_tokens":5}`),
				ContentType: aws.String("application/json")})
			return err
		}},
		{"ListAsyncInvokes query", func(ctx context.Context, c *bedrockruntime.Client) error {
			_, err := c.ListAsyncInvokes(ctx, &bedrockruntime.ListAsyncInvokesInput{MaxResults: aws.Int32(5), NextToken: aws.String("a+b/c=="),
				SubmitTimeAfter: aws.Time(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))})
			return err
		}},
		{"GetAsyncInvoke", func(ctx context.Context, c *bedrockruntime.Client) error {
			_, err := c.GetAsyncInvoke(ctx, &bedrockruntime.GetAsyncInvokeInput{InvocationArn: aws.String("arn:aws:bedrock:us-east-1:123456789012:async-invoke/abc123")})
			return err
		}},
	}
	for _, mode := range []string{"h1", "h2c", "h2"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			srv, client, got := authServer(t, v, lookup, mode)
			c := sdkClient(t, srv, client)
			for _, tc := range calls {
				if err := tc.call(t.Context(), c); err != nil {
					t.Fatalf("%s: %v", tc.name, err)
				}
				if proto, uri, cred := got.get(); proto != wantProto(mode) || cred != testAKID {
					t.Fatalf("%s: server saw HTTP/%d %q as %q", tc.name, proto, uri, cred)
				}
			}
			wrong := sdkClient(t, srv, client, func(o *bedrockruntime.Options) {
				o.Credentials = credentials.NewStaticCredentialsProvider(testAKID, "wrong", "")
			})
			err := calls[0].call(t.Context(), wrong)
			var ae smithy.APIError
			if !errors.As(err, &ae) || ae.ErrorCode() != "InvalidSignatureException" {
				t.Fatalf("wrong secret: err = %v, want InvalidSignatureException", err)
			}
		})
	}
	// The Go SDK sends bearer tokens only over HTTPS.
	for _, mode := range []string{"h1-tls", "h2"} {
		t.Run("bearer "+mode, func(t *testing.T) {
			t.Parallel()
			srv, client, got := authServer(t, v, lookup, mode)
			c := sdkClient(t, srv, client, func(o *bedrockruntime.Options) {
				o.BearerAuthTokenProvider = bearer.StaticTokenProvider{Token: bearer.Token{Value: apiKey}}
				o.AuthSchemePreference = []string{"httpBearerAuth"}
			})
			if err := calls[0].call(t.Context(), c); err != nil {
				t.Fatal(err)
			}
			if proto, _, cred := got.get(); proto != wantProto(mode) || cred != "key-sdk" {
				t.Fatalf("server saw HTTP/%d as %q", proto, cred)
			}
			bad := sdkClient(t, srv, client, func(o *bedrockruntime.Options) {
				o.BearerAuthTokenProvider = bearer.StaticTokenProvider{Token: bearer.Token{Value: apiKey + "x"}}
				o.AuthSchemePreference = []string{"httpBearerAuth"}
			})
			err := calls[0].call(t.Context(), bad)
			var ae smithy.APIError
			if !errors.As(err, &ae) || ae.ErrorCode() != "UnrecognizedClientException" {
				t.Fatalf("unknown key: err = %v, want UnrecognizedClientException", err)
			}
		})
	}
}
