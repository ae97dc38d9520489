package server

import (
	"context"
	"testing"

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
}
