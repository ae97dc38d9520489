package authn_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/bedrock-gateway/gateway/internal/authn"
	"github.com/bedrock-gateway/gateway/internal/bedrock"
	"github.com/bedrock-gateway/gateway/internal/sim"
	"github.com/bedrock-gateway/gateway/pkg/iamtoken"
)

const testGatewayID = "bgw-o-exampleorg1"

func stsSim(t *testing.T) (*sim.Simulator, *httptest.Server) {
	t.Helper()
	s := sim.New(sim.Options{})
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return s, srv
}

func identity(t *testing.T, arnSuffix string) sim.Identity {
	t.Helper()
	for _, id := range sim.Identities() {
		if strings.HasSuffix(id.Arn, arnSuffix) {
			return id
		}
	}
	t.Fatalf("no built-in identity %s", arnSuffix)
	return sim.Identity{}
}

// mint mints a token with the real minting package, as a member would.
func mint(t *testing.T, endpoint string, id sim.Identity, secret, gatewayID string) string {
	t.Helper()
	cfg := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider(id.AccessKeyID, secret, id.SessionToken)}
	tok, err := iamtoken.Mint(context.Background(), cfg, iamtoken.Options{GatewayID: gatewayID, STSEndpoint: endpoint})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func wantBedrockError(t *testing.T, err error, typ string) {
	t.Helper()
	var be *bedrock.Error
	if !errors.As(err, &be) || be.Type != typ {
		t.Fatalf("error = %v, want %s", err, typ)
	}
}

func TestIAMVerifierIdentities(t *testing.T) {
	t.Parallel()
	s, srv := stsSim(t)
	v := authn.NewIAMVerifier(authn.IAMVerifierOptions{STSEndpoint: srv.URL})
	user, role := identity(t, ":user/support-dev"), identity(t, ":assumed-role/support-bot/sim")
	for _, tc := range []struct {
		name    string
		token   string
		gateway string
		want    *sim.Identity // nil: refused
		errType string
	}{
		{"user", mint(t, srv.URL, user, user.SecretAccessKey, testGatewayID), testGatewayID, &user, ""},
		{"assumed role", mint(t, srv.URL, role, role.SecretAccessKey, testGatewayID), testGatewayID, &role, ""},
		{"wrong secret", mint(t, srv.URL, user, "not-the-secret", testGatewayID), testGatewayID, nil, "UnrecognizedClientException"},
		{"other gateway", mint(t, srv.URL, user, user.SecretAccessKey, "bgw-o-otherorg12"), testGatewayID, nil, "UnrecognizedClientException"},
		{"foreign origin", mint(t, "http://127.0.0.2:1", user, user.SecretAccessKey, testGatewayID), testGatewayID, nil, "UnrecognizedClientException"},
		{"not a token", iamtoken.Prefix + "!!", testGatewayID, nil, "UnrecognizedClientException"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := v.Verify(context.Background(), tc.token, tc.gateway)
			if tc.want == nil {
				wantBedrockError(t, err, tc.errType)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Account != tc.want.Account || c.Label != tc.want.Arn || c.ID != tc.want.UserID || c.Kind != authn.KindIAM {
				t.Fatalf("credential = %+v, want %+v", c, tc.want)
			}
			if c.ExpiresAt.IsZero() {
				t.Fatal("no expiry")
			}
		})
	}
	// The foreign origin and the malformed token never reached STS (nor anything else).
	if n := s.STSCalls(); n != 4 {
		t.Fatalf("STS calls = %d, want 4", n)
	}
}

func TestIAMVerifierCollapsesAndCaches(t *testing.T) {
	t.Parallel()
	s, srv := stsSim(t)
	var now atomic.Int64
	now.Store(time.Now().UnixNano())
	clock := func() time.Time { return time.Unix(0, now.Load()) }
	v := authn.NewIAMVerifier(authn.IAMVerifierOptions{STSEndpoint: srv.URL, CacheTTL: time.Minute, Now: clock})
	user := identity(t, ":user/support-dev")
	tok := mint(t, srv.URL, user, user.SecretAccessKey, testGatewayID)

	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			if _, err := v.Verify(context.Background(), tok, testGatewayID); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := s.STSCalls(); n != 1 {
		t.Fatalf("STS calls after 32 concurrent verifications = %d, want 1", n)
	}
	// The same token for another gateway id is another question (STS
	// refuses it: the audience header is signed).
	if _, err := v.Verify(context.Background(), tok, "bgw-o-otherorg12"); err == nil {
		t.Fatal("token accepted for another gateway id")
	}
	if n := s.STSCalls(); n != 2 {
		t.Fatalf("STS calls = %d, want 2", n)
	}
	// Past the cache TTL, STS is asked again.
	now.Add(int64(time.Minute + time.Second))
	if _, err := v.Verify(context.Background(), tok, testGatewayID); err != nil {
		t.Fatal(err)
	}
	if n := s.STSCalls(); n != 3 {
		t.Fatalf("STS calls after the TTL = %d, want 3", n)
	}
	// Past the token's expiry, it is refused without asking STS.
	now.Add(int64(iamtoken.MaxExpires))
	_, err := v.Verify(context.Background(), tok, testGatewayID)
	wantBedrockError(t, err, "UnrecognizedClientException")
	if n := s.STSCalls(); n != 3 {
		t.Fatalf("STS calls for an expired token = %d, want 3", n)
	}
}

func TestIAMVerifierCachesRefusalsBriefly(t *testing.T) {
	t.Parallel()
	s, srv := stsSim(t)
	var now atomic.Int64
	now.Store(time.Now().UnixNano())
	clock := func() time.Time { return time.Unix(0, now.Load()) }
	v := authn.NewIAMVerifier(authn.IAMVerifierOptions{STSEndpoint: srv.URL, RefusalTTL: 10 * time.Second, Now: clock})
	user := identity(t, ":user/support-dev")
	bad := mint(t, srv.URL, user, "wrong", testGatewayID)
	for range 3 {
		_, err := v.Verify(context.Background(), bad, testGatewayID)
		wantBedrockError(t, err, "UnrecognizedClientException")
	}
	if n := s.STSCalls(); n != 1 {
		t.Fatalf("STS calls = %d, want 1", n)
	}
	now.Add(int64(11 * time.Second))
	_, err := v.Verify(context.Background(), bad, testGatewayID)
	wantBedrockError(t, err, "UnrecognizedClientException")
	if n := s.STSCalls(); n != 2 {
		t.Fatalf("STS calls after the refusal TTL = %d, want 2", n)
	}
}

func TestIAMVerifierLRUBound(t *testing.T) {
	t.Parallel()
	s, srv := stsSim(t)
	v := authn.NewIAMVerifier(authn.IAMVerifierOptions{STSEndpoint: srv.URL, MaxEntries: 1})
	user, role := identity(t, ":user/support-dev"), identity(t, ":assumed-role/support-bot/sim")
	a := mint(t, srv.URL, user, user.SecretAccessKey, testGatewayID)
	b := mint(t, srv.URL, role, role.SecretAccessKey, testGatewayID)
	for _, tok := range []string{a, b, a} {
		if _, err := v.Verify(context.Background(), tok, testGatewayID); err != nil {
			t.Fatal(err)
		}
	}
	if n := s.STSCalls(); n != 3 {
		t.Fatalf("STS calls = %d, want 3 (a evicted by b)", n)
	}
	// Malformed tokens are not cached: they do not evict a verified identity.
	for i := range 3 {
		_, err := v.Verify(context.Background(), iamtoken.Prefix+strings.Repeat("A", i+1), testGatewayID)
		wantBedrockError(t, err, "UnrecognizedClientException")
	}
	if _, err := v.Verify(context.Background(), a, testGatewayID); err != nil {
		t.Fatal(err)
	}
	if n := s.STSCalls(); n != 3 {
		t.Fatalf("STS calls = %d, want 3 (a still cached)", n)
	}
}

// stsStandIn is an STS origin answering with handler, for failures the
// simulator does not produce.
func stsStandIn(t *testing.T, handler http.HandlerFunc) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)
	return srv
}

func TestIAMVerifierSTSFailures(t *testing.T) {
	t.Parallel()
	user := identity(t, ":user/support-dev")
	var elsewhere atomic.Int64
	target := stsStandIn(t, func(http.ResponseWriter, *http.Request) { elsewhere.Add(1) })
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	for _, tc := range []struct {
		name    string
		handler http.HandlerFunc // nil: the closed server
		errType string
	}{
		{"unreachable", nil, "ServiceUnavailableException"},
		{"500", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(500) }, "ServiceUnavailableException"},
		{"throttled", func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(400)
			_, _ = w.Write([]byte(`<ErrorResponse><Error><Code>Throttling</Code></Error></ErrorResponse>`))
		}, "ServiceUnavailableException"},
		{"expired", func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(403)
			_, _ = w.Write([]byte(`<ErrorResponse><Error><Code>ExpiredToken</Code></Error></ErrorResponse>`))
		}, "UnrecognizedClientException"},
		{"redirect not followed", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, target.URL+"/?Action=GetCallerIdentity", http.StatusFound)
		}, "ServiceUnavailableException"},
		{"garbage answer", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("<x>")) }, "ServiceUnavailableException"},
		{"bad account", func(w http.ResponseWriter, _ *http.Request) {
			_, _ = w.Write([]byte(`<GetCallerIdentityResponse><GetCallerIdentityResult><Arn>arn:aws:iam::1:user/x</Arn><UserId>A</UserId><Account>1</Account></GetCallerIdentityResult></GetCallerIdentityResponse>`))
		}, "ServiceUnavailableException"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			url := down.URL
			if tc.handler != nil {
				url = stsStandIn(t, tc.handler).URL
			}
			v := authn.NewIAMVerifier(authn.IAMVerifierOptions{STSEndpoint: url})
			_, err := v.Verify(context.Background(), mint(t, url, user, user.SecretAccessKey, testGatewayID), testGatewayID)
			wantBedrockError(t, err, tc.errType)
		})
	}
	if n := elsewhere.Load(); n != 0 {
		t.Fatalf("redirect target called %d times", n)
	}
}

func TestIAMVerifierInflightLimit(t *testing.T) {
	t.Parallel()
	arrived, release := make(chan struct{}), make(chan struct{})
	srv := stsStandIn(t, func(w http.ResponseWriter, _ *http.Request) {
		arrived <- struct{}{}
		<-release
		w.WriteHeader(500)
	})
	v := authn.NewIAMVerifier(authn.IAMVerifierOptions{STSEndpoint: srv.URL, MaxInflight: 1})
	user, role := identity(t, ":user/support-dev"), identity(t, ":assumed-role/support-bot/sim")
	first := make(chan error, 1)
	go func() {
		_, err := v.Verify(context.Background(), mint(t, srv.URL, user, user.SecretAccessKey, testGatewayID), testGatewayID)
		first <- err
	}()
	<-arrived
	_, err := v.Verify(context.Background(), mint(t, srv.URL, role, role.SecretAccessKey, testGatewayID), testGatewayID)
	wantBedrockError(t, err, "ServiceUnavailableException")
	close(release)
	wantBedrockError(t, <-first, "ServiceUnavailableException")
}

func TestIAMVerifierBeginIgnoresOtherCredentials(t *testing.T) {
	t.Parallel()
	v := authn.NewIAMVerifier(authn.IAMVerifierOptions{})
	for _, auth := range []string{"", "Bearer bgw-someapikey", "AWS4-HMAC-SHA256 Credential=x"} {
		r := httptest.NewRequest(http.MethodPost, "/model/m/invoke", nil)
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		var p authn.Pending
		if handled, err := v.Begin(context.Background(), r, testGatewayID, &p); handled || err != nil {
			t.Fatalf("%q: handled=%v err=%v", auth, handled, err)
		}
	}
}

// BenchmarkIAMVerifierCached measures what a request with an already verified
// IAM identity token costs the gateway: hashing the token and one cache
// lookup (no STS call: the benchmark fails if one is made after the first).
func BenchmarkIAMVerifierCached(b *testing.B) {
	s := sim.New(sim.Options{})
	srv := httptest.NewServer(s)
	defer srv.Close()
	var user sim.Identity
	for _, id := range sim.Identities() {
		if strings.HasSuffix(id.Arn, ":user/support-dev") {
			user = id
		}
	}
	cfg := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider(user.AccessKeyID, user.SecretAccessKey, "")}
	tok, err := iamtoken.Mint(context.Background(), cfg, iamtoken.Options{GatewayID: testGatewayID, STSEndpoint: srv.URL})
	if err != nil {
		b.Fatal(err)
	}
	v := authn.NewIAMVerifier(authn.IAMVerifierOptions{STSEndpoint: srv.URL, CacheTTL: time.Hour})
	ctx := context.Background()
	if _, err := v.Verify(ctx, tok, testGatewayID); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := v.Verify(ctx, tok, testGatewayID); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if n := s.STSCalls(); n != 1 {
		b.Fatalf("STS calls = %d, want 1 (the rest from the cache)", n)
	}
}

// TestIAMVerifierBudget: tokens that are not cached spend a verification
// budget per source address and overall, so outsiders minting fresh tokens
// cannot turn the gateway into an STS amplifier; a throttled token costs no
// STS call, cached tokens cost no budget, and time refills it.
func TestIAMVerifierBudget(t *testing.T) {
	t.Parallel()
	user := identity(t, ":user/support-dev")
	// fresh mints distinct tokens (another validity each): none is cached.
	fresh := func(t *testing.T, endpoint string, i int) string {
		t.Helper()
		cfg := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider(user.AccessKeyID, user.SecretAccessKey, user.SessionToken)}
		tok, err := iamtoken.Mint(context.Background(), cfg, iamtoken.Options{GatewayID: testGatewayID, STSEndpoint: endpoint, Expires: time.Duration(60+i) * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	t.Run("per source", func(t *testing.T) {
		t.Parallel()
		s, srv := stsSim(t)
		var now atomic.Int64
		now.Store(time.Now().UnixNano())
		clock := func() time.Time { return time.Unix(0, now.Load()) }
		// 1 a second per source: a burst of 2.
		v := authn.NewIAMVerifier(authn.IAMVerifierOptions{STSEndpoint: srv.URL, VerifyRatePerSource: 1, Now: clock})
		const a, b = "203.0.113.7:5000", "198.51.100.9:443"
		first := fresh(t, srv.URL, 0)
		for i := range 2 {
			if _, err := v.VerifyFrom(context.Background(), fresh(t, srv.URL, i), testGatewayID, a); err != nil {
				t.Fatal(err)
			}
		}
		_, err := v.VerifyFrom(context.Background(), fresh(t, srv.URL, 2), testGatewayID, "203.0.113.7:5001")
		wantBedrockError(t, err, "ThrottlingException")
		if n := s.STSCalls(); n != 2 {
			t.Fatalf("STS calls = %d, want 2 (the throttled token is not sent)", n)
		}
		// A cached token from the same source is still answered.
		if _, err := v.VerifyFrom(context.Background(), first, testGatewayID, a); err != nil {
			t.Fatalf("cached token: %v", err)
		}
		// Another source has its own budget.
		if _, err := v.VerifyFrom(context.Background(), fresh(t, srv.URL, 3), testGatewayID, b); err != nil {
			t.Fatal(err)
		}
		// A second later the source may verify one more.
		now.Add(int64(time.Second))
		if _, err := v.VerifyFrom(context.Background(), fresh(t, srv.URL, 4), testGatewayID, a); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("overall", func(t *testing.T) {
		t.Parallel()
		s, srv := stsSim(t)
		frozen := time.Now()
		v := authn.NewIAMVerifier(authn.IAMVerifierOptions{STSEndpoint: srv.URL, VerifyRate: 1, VerifyRatePerSource: -1,
			Now: func() time.Time { return frozen }})
		var throttled int
		for i := range 4 {
			_, err := v.VerifyFrom(context.Background(), fresh(t, srv.URL, i), testGatewayID, "192.0.2.1:1")
			if err != nil {
				wantBedrockError(t, err, "ThrottlingException")
				throttled++
			}
		}
		// A burst of 2, then 1 a second; no time passes.
		if throttled != 2 || s.STSCalls() != 2 {
			t.Fatalf("throttled %d, STS calls %d", throttled, s.STSCalls())
		}
	})
}
