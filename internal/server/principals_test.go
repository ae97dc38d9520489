package server

import (
	"context"
	"net/http"
	"net/url"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/smithy-go/auth/bearer"

	"github.com/bedrock-gateway/gateway/internal/sim"
	"github.com/bedrock-gateway/gateway/internal/testutil/redistest"
	"github.com/bedrock-gateway/gateway/pkg/iamtoken"
)

// principalsState narrows one share to roles and denies one IAM user outright.
const principalsState = `
organization:
  id: o-testorg0001
  root: r-ab12
  hub_account: "111111111111"
  accounts:
    - {id: "111111111111", name: hub}
    - {id: "222222222222", name: support-bot}
    - {id: "333333333333", name: ds-lab}
entitlements:
  - name: bots-only
    model: "` + haiku + `"
    shares:
      - {target: "222222222222", principals: ["arn:aws:iam::222222222222:role/support-*"]}
  - {name: open, model: "` + haiku + `", shares: [{target: "333333333333"}]}
denied_principals: ["arn:aws:iam::333333333333:user/data-*"]
`

func TestIAMPrincipalsWithSDK(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	up := newUpstream(t, sim.Options{})
	certFile, keyFile, pool := selfSignedCert(t, t.TempDir(), "gw")
	g := startGateway(t, gatewayOptions{redis: rs.URL(), upstream: up, stateYAML: principalsState,
		args: []string{"--tls-cert", certFile, "--tls-key", keyFile, "--iam-identity", "--sts-endpoint", up.srv.URL}})
	tr := tlsClient(pool, false)
	mint := iamtoken.Options{GatewayID: "bgw-o-testorg0001", STSEndpoint: up.srv.URL}
	ctx := context.Background()
	for _, tc := range []struct {
		name, arnSuffix, model string
		want                   string // "" = allowed, else the error code
	}{
		{"assumed role matches the share's pattern", ":assumed-role/support-bot/sim", "bots-only", ""},
		{"IAM user of the account is not among the principals", ":user/support-dev", "bots-only", "AccessDeniedException"},
		{"share without principals admits every principal", ":assumed-role/notebooks/sim", "open", ""},
		{"denied principal is refused like a revoked key", ":user/data-scientist", "open", "UnrecognizedClientException"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := converse(ctx, iamClient(g, tr, simIdentity(t, tc.arnSuffix), mint), tc.model, 5)
			if got := errCode(err); got != tc.want {
				t.Fatalf("got %q (%v), want %q", got, err, tc.want)
			}
		})
	}
	t.Run("gateway-issued key never matches a share naming principals", func(t *testing.T) {
		var issued struct {
			APIKey string `json:"api_key"`
		}
		if code := g.admin(t, "POST", "/admin/v1/credentials", map[string]any{"account": "222222222222", "kind": "api_key", "label": "nb"}, &issued); code != http.StatusCreated {
			t.Fatalf("issuing API key: %d", code)
		}
		c := g.client(t, "", "", func(o *bedrockruntime.Options) {
			o.HTTPClient = sim.SDKHTTPClient(tr)
			o.BearerAuthTokenProvider = bearer.StaticTokenProvider{Token: bearer.Token{Value: issued.APIKey}}
			o.AuthSchemePreference = []string{"httpBearerAuth"}
		})
		if _, err := converse(ctx, c, "bots-only", 5); errCode(err) != "AccessDeniedException" {
			t.Fatalf("got %v, want AccessDeniedException", err)
		}
	})

	t.Run("deny list edited through the admin API is in force on return", func(t *testing.T) {
		const pattern = "arn:aws:iam::222222222222:role/support-bot"
		bot := iamClient(g, tr, simIdentity(t, ":assumed-role/support-bot/sim"), mint)
		if code := g.admin(t, "POST", "/admin/v1/denied-principals", map[string]string{"principal": pattern}, nil); code != http.StatusOK {
			t.Fatalf("deny: %d", code)
		}
		if _, err := converse(ctx, bot, "bots-only", 5); errCode(err) != "UnrecognizedClientException" {
			t.Fatalf("denied role: got %v, want UnrecognizedClientException", err)
		}
		if code := g.admin(t, "DELETE", "/admin/v1/denied-principals/"+url.PathEscape(pattern), nil, nil); code != http.StatusOK {
			t.Fatalf("allow: %d", code)
		}
		if _, err := converse(ctx, bot, "bots-only", 5); err != nil {
			t.Fatalf("allowed again: %v", err)
		}
	})
}
