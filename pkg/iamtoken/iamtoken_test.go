package iamtoken

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
)

var testNow = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

func testConfig(session string) aws.Config {
	return aws.Config{
		Region:      "eu-west-1",
		Credentials: credentials.NewStaticCredentialsProvider("AKIAEXAMPLEEXAMPLE01", "secret", session),
	}
}

func decode(t *testing.T, tok string) *url.URL {
	t.Helper()
	rest, ok := strings.CutPrefix(tok, Prefix)
	if !ok {
		t.Fatalf("token %q lacks the prefix", tok)
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(rest)
	if err != nil {
		t.Fatalf("token body: %v", err)
	}
	u, err := url.Parse(string(b))
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestMintShape(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		session     string
		opts        Options
		wantExpires string
		wantParams  []string
	}{
		{name: "static", opts: Options{}, wantExpires: "900"},
		{name: "temporary", session: "sess", opts: Options{}, wantExpires: "900", wantParams: []string{"X-Amz-Security-Token"}},
		{name: "expires", opts: Options{Expires: 2*time.Minute + 500*time.Millisecond}, wantExpires: "120"},
	}
	base := []string{"Action", "Version", "X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires", "X-Amz-SignedHeaders", "X-Amz-Signature"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.opts.GatewayID = "o-abc123def4"
			tt.opts.Now = func() time.Time { return testNow }
			tok, err := Mint(context.Background(), testConfig(tt.session), tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(tok, "=") {
				t.Errorf("token %q is padded", tok)
			}
			u := decode(t, tok)
			if u.Scheme != "https" || u.Host != "sts.eu-west-1.amazonaws.com" || u.Path != "/" {
				t.Errorf("URL %v: want https://sts.eu-west-1.amazonaws.com/", u)
			}
			q := u.Query()
			want := append(slices.Clone(base), tt.wantParams...)
			got := make([]string, 0, len(q))
			for k := range q {
				got = append(got, k)
			}
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("query parameters = %v, want %v", got, want)
			}
			checks := map[string]string{
				"Action":              "GetCallerIdentity",
				"Version":             "2011-06-15",
				"X-Amz-Algorithm":     "AWS4-HMAC-SHA256",
				"X-Amz-Credential":    "AKIAEXAMPLEEXAMPLE01/20260304/eu-west-1/sts/aws4_request",
				"X-Amz-Date":          "20260304T050607Z",
				"X-Amz-Expires":       tt.wantExpires,
				"X-Amz-SignedHeaders": "host;x-bedrock-gateway-id",
			}
			for k, v := range checks {
				if q.Get(k) != v {
					t.Errorf("%s = %q, want %q", k, q.Get(k), v)
				}
			}
		})
	}
}

// The gateway id is signed: tokens minted for two gateways differ only in
// their signature.
func TestMintSignsGatewayID(t *testing.T) {
	t.Parallel()
	mint := func(id string) url.Values {
		tok, err := Mint(context.Background(), testConfig(""), Options{GatewayID: id, Now: func() time.Time { return testNow }})
		if err != nil {
			t.Fatal(err)
		}
		return decode(t, tok).Query()
	}
	a, b := mint("o-aaaaaaaaaa"), mint("o-bbbbbbbbbb")
	if a.Get("X-Amz-Signature") == b.Get("X-Amz-Signature") {
		t.Fatal("the signature does not depend on the gateway id")
	}
	a.Del("X-Amz-Signature")
	b.Del("X-Amz-Signature")
	if a.Encode() != b.Encode() {
		t.Fatalf("tokens differ beyond the signature: %v vs %v", a, b)
	}
}

func TestMintErrors(t *testing.T) {
	t.Parallel()
	failing := aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{}, errors.New("no credentials here")
	})
	tests := []struct {
		name string
		cfg  aws.Config
		opts Options
	}{
		{name: "no gateway id", cfg: testConfig(""), opts: Options{}},
		{name: "newline in gateway id", cfg: testConfig(""), opts: Options{GatewayID: "a\nb"}},
		{name: "expires too long", cfg: testConfig(""), opts: Options{GatewayID: "g", Expires: 901 * time.Second}},
		{name: "expires too short", cfg: testConfig(""), opts: Options{GatewayID: "g", Expires: time.Millisecond}},
		{name: "expires negative", cfg: testConfig(""), opts: Options{GatewayID: "g", Expires: -time.Minute}},
		{name: "no region", cfg: aws.Config{Credentials: testConfig("").Credentials}, opts: Options{GatewayID: "g"}},
		{name: "no credentials", cfg: aws.Config{Region: "eu-west-1"}, opts: Options{GatewayID: "g"}},
		{name: "credentials fail", cfg: aws.Config{Region: "eu-west-1", Credentials: failing}, opts: Options{GatewayID: "g"}},
		{name: "endpoint not http", cfg: testConfig(""), opts: Options{GatewayID: "g", STSEndpoint: "ftp://sts.example"}},
		{name: "endpoint with path", cfg: testConfig(""), opts: Options{GatewayID: "g", STSEndpoint: "https://sts.example/sts"}},
		{name: "endpoint with query", cfg: testConfig(""), opts: Options{GatewayID: "g", STSEndpoint: "https://sts.example/?a=b"}},
		{name: "endpoint without host", cfg: testConfig(""), opts: Options{GatewayID: "g", STSEndpoint: "https://"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if tok, err := Mint(context.Background(), tt.cfg, tt.opts); err == nil {
				t.Fatalf("Mint = %q, want an error", tok)
			}
		})
	}
}

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func TestTokenProviderRefreshes(t *testing.T) {
	t.Parallel()
	var retrievals int
	var mu sync.Mutex
	creds := aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		mu.Lock()
		defer mu.Unlock()
		retrievals++
		return aws.Credentials{AccessKeyID: "AKIAEXAMPLEEXAMPLE01", SecretAccessKey: "s"}, nil
	})
	clk := &clock{t: testNow}
	p := NewTokenProvider(aws.Config{Region: "eu-west-1", Credentials: creds}, Options{GatewayID: "g", Now: clk.Now})

	steps := []struct {
		at        time.Duration // since testNow
		wantFresh bool          // a new token is minted
		wantDate  string
	}{
		{at: 0, wantFresh: true, wantDate: "20260304T050607Z"},
		{at: time.Minute, wantDate: "20260304T050607Z"},
		{at: 13*time.Minute + 59*time.Second, wantDate: "20260304T050607Z"},
		{at: 14 * time.Minute, wantFresh: true, wantDate: "20260304T052007Z"}, // 1m left: re-mint
		{at: 20 * time.Minute, wantDate: "20260304T052007Z"},
		{at: time.Hour, wantFresh: true, wantDate: "20260304T060607Z"}, // long expired
	}
	var last string
	for _, s := range steps {
		clk.Set(testNow.Add(s.at))
		tok, err := p.RetrieveBearerToken(context.Background())
		if err != nil {
			t.Fatalf("at %v: %v", s.at, err)
		}
		if fresh := tok.Value != last; fresh != s.wantFresh {
			t.Errorf("at %v: fresh = %v, want %v", s.at, fresh, s.wantFresh)
		}
		if got := decode(t, tok.Value).Query().Get("X-Amz-Date"); got != s.wantDate {
			t.Errorf("at %v: X-Amz-Date = %s, want %s", s.at, got, s.wantDate)
		}
		date, _ := time.Parse("20060102T150405Z", s.wantDate)
		if !tok.CanExpire || !tok.Expires.Equal(date.Add(15*time.Minute)) {
			t.Errorf("at %v: expiry %v (can expire %v), want %v", s.at, tok.Expires, tok.CanExpire, date.Add(15*time.Minute))
		}
		last = tok.Value
	}
	if retrievals != 3 {
		t.Errorf("credentials retrieved %d times, want once per minting (3)", retrievals)
	}
}

// A very short token is refreshed when a fifth of its validity remains, not
// at every call.
func TestTokenProviderShortTokens(t *testing.T) {
	t.Parallel()
	clk := &clock{t: testNow}
	p := NewTokenProvider(testConfig(""), Options{GatewayID: "g", Expires: 50 * time.Second, Now: clk.Now})
	first, err := p.RetrieveBearerToken(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	clk.Set(testNow.Add(39 * time.Second))
	if again, _ := p.RetrieveBearerToken(context.Background()); again.Value != first.Value {
		t.Error("re-minted with more than a fifth of the validity left")
	}
	clk.Set(testNow.Add(40 * time.Second))
	if again, _ := p.RetrieveBearerToken(context.Background()); again.Value == first.Value {
		t.Error("not re-minted with a fifth of the validity left")
	}
}

func TestTokenProviderError(t *testing.T) {
	t.Parallel()
	p := NewTokenProvider(aws.Config{Region: "eu-west-1"}, Options{GatewayID: "g"})
	if _, err := p.RetrieveBearerToken(context.Background()); err == nil {
		t.Fatal("no error without credentials")
	}
}

// The documented client setup makes the Bedrock Runtime client send the
// provider's token as a bearer token, even though the config has AWS
// credentials too.
func TestTokenProviderWithBedrockRuntime(t *testing.T) {
	t.Parallel()
	auth := make(chan string, 1)
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth <- r.Header.Get("Authorization")
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{}`)
	}))
	defer srv.Close()

	cfg := testConfig("")
	cfg.HTTPClient = srv.Client()
	tp := NewTokenProvider(cfg, Options{GatewayID: "o-abc123def4"})
	client := bedrockruntime.NewFromConfig(cfg, func(o *bedrockruntime.Options) {
		o.BaseEndpoint = aws.String(srv.URL)
		o.BearerAuthTokenProvider = tp
		o.AuthSchemePreference = []string{"httpBearerAuth"}
	})
	_, err := client.InvokeModel(context.Background(), &bedrockruntime.InvokeModelInput{
		ModelId: aws.String("m"), Body: []byte(`{}`), ContentType: aws.String("application/json"),
	})
	if err != nil {
		t.Fatalf("InvokeModel: %v", err)
	}
	got := <-auth
	tok, ok := strings.CutPrefix(got, "Bearer ")
	if !ok || !strings.HasPrefix(tok, Prefix) {
		t.Fatalf("Authorization = %q, want Bearer %s…", got, Prefix)
	}
	decode(t, tok)
}
