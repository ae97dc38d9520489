package server

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/smithy-go/auth/bearer"

	"github.com/bedrock-gateway/gateway/internal/sim"
	"github.com/bedrock-gateway/gateway/internal/testutil/redistest"
	"github.com/bedrock-gateway/gateway/pkg/iamtoken"
)

// iamState has no account 444444444444: its built-in identities stand for
// callers outside the organization.
const iamState = `
organization:
  id: o-testorg0001
  root: r-ab12
  hub_account: "111111111111"
  accounts:
    - {id: "111111111111", name: hub}
    - {id: "222222222222", name: support-bot}
    - {id: "333333333333", name: ds-lab}
entitlements:
  - {name: direct, model: "` + haiku + `", shares: [{target: "222222222222"}]}
`

func simIdentity(t *testing.T, arnSuffix string) sim.Identity {
	t.Helper()
	for _, id := range sim.Identities() {
		if strings.HasSuffix(id.Arn, arnSuffix) {
			return id
		}
	}
	t.Fatalf("no built-in identity %s", arnSuffix)
	return sim.Identity{}
}

// iamClient is a Bedrock Runtime client authenticating with IAM identity
// tokens minted (and re-minted) by pkg/iamtoken from id's credentials.
func iamClient(g *gateway, tr *http.Client, id sim.Identity, mint iamtoken.Options) *bedrockruntime.Client {
	cfg := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider(id.AccessKeyID, id.SecretAccessKey, id.SessionToken)}
	return bedrockruntime.New(bedrockruntime.Options{
		BaseEndpoint:            aws.String(g.endpoint()),
		Region:                  "us-east-1",
		Retryer:                 aws.NopRetryer{},
		HTTPClient:              sim.SDKHTTPClient(tr),
		BearerAuthTokenProvider: iamtoken.NewTokenProvider(cfg, mint),
		AuthSchemePreference:    []string{"httpBearerAuth"},
	})
}

func TestIAMIdentityWithSDK(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	up := newUpstream(t, sim.Options{})
	certFile, keyFile, pool := selfSignedCert(t, t.TempDir(), "gw")
	tlsArgs := []string{"--tls-cert", certFile, "--tls-key", keyFile, "--iam-identity"}
	g := startGateway(t, gatewayOptions{redis: rs.URL(), upstream: up, stateYAML: iamState,
		args: append(tlsArgs, "--sts-endpoint", up.srv.URL)})
	const gatewayID = "bgw-o-testorg0001" // derived from the organization id
	if got := g.GatewayID(); got != gatewayID {
		t.Fatalf("gateway id = %q, want %q", got, gatewayID)
	}
	resp, err := http.Get("http://" + g.OpsAddr() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "gateway id: "+gatewayID) {
		t.Fatalf("/readyz does not show the gateway id:\n%s", body)
	}

	tr := tlsClient(pool, false)
	mint := iamtoken.Options{GatewayID: gatewayID, STSEndpoint: up.srv.URL}
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		id   sim.Identity
		mint iamtoken.Options
		want string // "" = allowed, else the error code
	}{
		{"IAM user", simIdentity(t, ":user/support-dev"), mint, ""},
		{"assumed role", simIdentity(t, ":assumed-role/support-bot/sim"), mint, ""},
		{"account not shared with", simIdentity(t, ":user/data-scientist"), mint, "AccessDeniedException"},
		{"account outside the organization", simIdentity(t, ":user/campaign-manager"), mint, "UnrecognizedClientException"},
		{"token for another gateway", simIdentity(t, ":user/support-dev"),
			iamtoken.Options{GatewayID: "bgw-o-otherorg0001", STSEndpoint: up.srv.URL}, "UnrecognizedClientException"},
		{"STS host not allowed", simIdentity(t, ":user/support-dev"),
			iamtoken.Options{GatewayID: gatewayID, STSEndpoint: "http://localhost:1"}, "UnrecognizedClientException"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := converse(ctx, iamClient(g, tr, tc.id, tc.mint), "direct", 5)
			if got := errCode(err); got != tc.want {
				t.Fatalf("got %q (%v), want %q", got, err, tc.want)
			}
		})
	}

	t.Run("one STS call for many requests", func(t *testing.T) {
		id := simIdentity(t, ":assumed-role/support-bot/sim")
		cfg := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider(id.AccessKeyID, id.SecretAccessKey, id.SessionToken)}
		// Another validity than the provider's: a token not seen yet (the
		// same credentials in the same second sign the same token).
		fresh := mint
		fresh.Expires = 600 * time.Second
		tok, err := iamtoken.Mint(ctx, cfg, fresh)
		if err != nil {
			t.Fatal(err)
		}
		c := g.client(t, "", "", func(o *bedrockruntime.Options) {
			o.HTTPClient = sim.SDKHTTPClient(tr)
			o.BearerAuthTokenProvider = bearer.StaticTokenProvider{Token: bearer.Token{Value: tok}}
			o.AuthSchemePreference = []string{"httpBearerAuth"}
		})
		before := up.sim.STSCalls()
		for range 10 {
			if _, err := converse(ctx, c, "direct", 5); err != nil {
				t.Fatal(err)
			}
		}
		if n := up.sim.STSCalls() - before; n != 1 {
			t.Fatalf("STS calls for 10 requests with one token = %d, want 1", n)
		}
	})

	t.Run("STS down", func(t *testing.T) {
		down := httptest.NewServer(http.NotFoundHandler())
		down.Close()
		g2 := startGateway(t, gatewayOptions{redis: rs.URL(), upstream: up, stateYAML: iamState,
			args: append(tlsArgs, "--sts-endpoint", down.URL)})
		c := iamClient(g2, tr, simIdentity(t, ":user/support-dev"), iamtoken.Options{GatewayID: gatewayID, STSEndpoint: down.URL})
		_, err := converse(ctx, c, "direct", 5)
		if got := errCode(err); got != "ServiceUnavailableException" {
			t.Fatalf("got %q (%v), want ServiceUnavailableException", got, err)
		}
	})

	t.Run("off by default", func(t *testing.T) {
		g3 := startGateway(t, gatewayOptions{redis: rs.URL(), upstream: up, stateYAML: iamState,
			args: []string{"--tls-cert", certFile, "--tls-key", keyFile, "--sts-endpoint", up.srv.URL}})
		_, err := converse(ctx, iamClient(g3, tr, simIdentity(t, ":user/support-dev"), mint), "direct", 5)
		if got := errCode(err); got != "UnrecognizedClientException" {
			t.Fatalf("got %q (%v), want UnrecognizedClientException", got, err)
		}
	})
}
