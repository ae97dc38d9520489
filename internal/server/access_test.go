package server

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	bedrockcp "github.com/aws/aws-sdk-go-v2/service/bedrock"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/auth/bearer"

	"github.com/bedrock-gateway/gateway/internal/sim"
	"github.com/bedrock-gateway/gateway/internal/testutil/redistest"
)

const accessState = baseState + `
entitlements:
  - {name: direct, model: "` + haiku + `", shares: [{target: "222222222222"}]}
  - {name: nested, model: amazon.nova-lite-v1:0, shares: [{target: ou-ab12-platform}]}
  - {name: orgwide, model: amazon.titan-text-express-v1, scope: [o-testorg0001], shares: [{target: o-testorg0001}]}
  - {name: rootwide, model: meta.llama3-8b-instruct-v1:0, shares: [{target: r-ab12}]}
  - {name: outside-scope, model: amazon.nova-micro-v1:0, scope: [ou-ab12-mkt00001], shares: [{target: ou-ab12-mkt00001}]}
  - {name: unshared, model: mistral.mistral-7b-instruct-v0:2, shares: [{target: "333333333333"}]}
  - {name: suspended, model: amazon.nova-pro-v1:0, state: suspended, shares: [{target: o-testorg0001}]}
  - {name: converse-only, model: cohere.command-r-v1:0, operations: [Converse], shares: [{target: o-testorg0001}]}
  - {name: twin-a, model: anthropic.claude-3-haiku-20240307-v1:0, shares: [{target: o-testorg0001}]}
  - {name: twin-b, model: anthropic.claude-3-haiku-20240307-v1:0, shares: [{target: o-testorg0001}]}
`

func errCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	if err != nil {
		return "error: " + err.Error()
	}
	return ""
}

func TestAccessMatrixWithSDK(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	up := newUpstream(t, sim.Options{})
	dir := t.TempDir()
	certFile, keyFile, pool := selfSignedCert(t, dir, "gw")
	g := startGateway(t, gatewayOptions{redis: rs.URL(), upstream: up, stateYAML: accessState,
		args: []string{"--tls-cert", certFile, "--tls-key", keyFile}})

	// An API key for the same member account, issued through the admin API.
	var issued struct {
		APIKey string `json:"api_key"`
	}
	if code := g.admin(t, "POST", "/admin/v1/credentials", map[string]any{"account": "222222222222", "kind": "api_key", "label": "notebook"}, &issued); code != 201 || issued.APIKey == "" {
		t.Fatalf("issuing API key: %d", code)
	}
	clients := map[string]*bedrockruntime.Client{
		"sigv4-h1": g.client(t, devAKID, devSecret, func(o *bedrockruntime.Options) { o.HTTPClient = sim.SDKHTTPClient(tlsClient(pool, false)) }),
		"sigv4-h2": g.client(t, devAKID, devSecret, func(o *bedrockruntime.Options) { o.HTTPClient = sim.SDKHTTPClient(tlsClient(pool, true)) }),
		"apikey-h1": g.client(t, "", "", func(o *bedrockruntime.Options) {
			o.HTTPClient = sim.SDKHTTPClient(tlsClient(pool, false))
			o.BearerAuthTokenProvider = bearer.StaticTokenProvider{Token: bearer.Token{Value: issued.APIKey}}
			o.AuthSchemePreference = []string{"httpBearerAuth"}
		}),
		"apikey-h2": g.client(t, "", "", func(o *bedrockruntime.Options) {
			o.HTTPClient = sim.SDKHTTPClient(tlsClient(pool, true))
			o.BearerAuthTokenProvider = bearer.StaticTokenProvider{Token: bearer.Token{Value: issued.APIKey}}
			o.AuthSchemePreference = []string{"httpBearerAuth"}
		}),
	}
	cases := []struct {
		name, model string
		op          string // converse (default) or invoke
		want        string // "" = allowed, else the error code
		upstream    string // the model the simulator must see
	}{
		{name: "shared directly", model: "direct", upstream: haiku},
		{name: "through nested OU", model: "nested", upstream: "amazon.nova-lite-v1:0"},
		{name: "through organization", model: "orgwide", upstream: "amazon.titan-text-express-v1"},
		{name: "through root", model: "rootwide", upstream: "meta.llama3-8b-instruct-v1:0"},
		{name: "outside scope", model: "outside-scope", want: "AccessDeniedException"},
		{name: "unshared", model: "unshared", want: "AccessDeniedException"},
		{name: "unknown", model: "no-such-entitlement", want: "AccessDeniedException"},
		{name: "suspended", model: "suspended", want: "AccessDeniedException"},
		{name: "operation allowed", model: "converse-only", upstream: "cohere.command-r-v1:0"},
		{name: "operation not allowed", model: "converse-only", op: "invoke", want: "AccessDeniedException"},
		{name: "foundation-model ARN of the name", model: "arn:aws:bedrock:us-east-1::foundation-model/direct", upstream: haiku},
		{name: "upstream model ID, unique", model: "amazon.nova-lite-v1:0", upstream: "amazon.nova-lite-v1:0"},
		{name: "upstream ARN, unique", model: "arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-lite-v1:0", upstream: "amazon.nova-lite-v1:0"},
		{name: "upstream model ID, ambiguous", model: "anthropic.claude-3-haiku-20240307-v1:0", want: "ValidationException"},
		{name: "upstream model of an unshared entitlement", model: "mistral.mistral-7b-instruct-v0:2", want: "AccessDeniedException"},
	}
	ctx := context.Background()
	for cname, c := range clients {
		for _, tc := range cases {
			var err error
			if tc.op == "invoke" {
				_, err = c.InvokeModel(ctx, &bedrockruntime.InvokeModelInput{ModelId: aws.String(tc.model), Body: []byte(`{"message":"hi","max_tokens":5}`)})
			} else {
				_, err = converse(ctx, c, tc.model, 5)
			}
			if got := errCode(err); got != tc.want {
				t.Errorf("%s / %s: got %q, want %q", cname, tc.name, got, tc.want)
				continue
			}
			if tc.want == "ValidationException" && !strings.Contains(err.Error(), "twin-a") {
				t.Errorf("%s / %s: ambiguity error does not name the choices: %v", cname, tc.name, err)
			}
			if tc.want == "" {
				reqs := up.sim.Requests()
				if got := reqs[len(reqs)-1].ModelID; got != tc.upstream {
					t.Errorf("%s / %s: upstream saw model %q, want %q", cname, tc.name, got, tc.upstream)
				}
			}
		}
	}

	// A bearer key over plain HTTP never leaves the Go SDK; a revoked key is refused.
	var list struct {
		Credentials []struct{ ID, Kind string } `json:"credentials"`
	}
	g.admin(t, "GET", "/admin/v1/credentials", nil, &list)
	for _, cr := range list.Credentials {
		if cr.Kind == "api_key" {
			if code := g.admin(t, "DELETE", "/admin/v1/credentials/"+cr.ID, nil, nil); code != http.StatusOK {
				t.Fatalf("revoking: %d", code)
			}
		}
	}
	if _, err := converse(ctx, clients["apikey-h2"], "direct", 5); errCode(err) != "UnrecognizedClientException" {
		t.Fatalf("revoked API key: %v", err)
	}
}

// TestListFoundationModelsShowsWhatIsShared uses the official control-plane
// client (service/bedrock) against the gateway: a member sees exactly the
// entitlements it may use, by name.
func TestListFoundationModelsShowsWhatIsShared(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	up := newUpstream(t, sim.Options{})
	g := startGateway(t, gatewayOptions{redis: rs.URL(), upstream: up, stateYAML: accessState})
	client := bedrockcp.New(bedrockcp.Options{BaseEndpoint: aws.String(g.endpoint()), Region: "us-east-1",
		Credentials: staticCreds(devAKID, devSecret), Retryer: aws.NopRetryer{}})
	out, err := client.ListFoundationModels(context.Background(), &bedrockcp.ListFoundationModelsInput{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range out.ModelSummaries {
		names = append(names, aws.ToString(m.ModelId))
	}
	want := []string{"converse-only", "direct", "nested", "orgwide", "rootwide", "twin-a", "twin-b"}
	if strings.Join(names, ",") != strings.Join(want, ",") {
		t.Fatalf("dev sees %v, want %v", names, want)
	}
	got, err := client.GetFoundationModel(context.Background(), &bedrockcp.GetFoundationModelInput{ModelIdentifier: aws.String("nested")})
	if err != nil || aws.ToString(got.ModelDetails.ModelId) != "nested" || aws.ToString(got.ModelDetails.ProviderName) != "amazon" {
		t.Fatalf("get nested: %+v %v", got, err)
	}
	if _, err := client.GetFoundationModel(context.Background(), &bedrockcp.GetFoundationModelInput{ModelIdentifier: aws.String("unshared")}); errCode(err) != "AccessDeniedException" {
		t.Fatalf("get unshared: %v", err)
	}
	byProvider, err := client.ListFoundationModels(context.Background(), &bedrockcp.ListFoundationModelsInput{ByProvider: aws.String("amazon")})
	if err != nil || len(byProvider.ModelSummaries) != 2 {
		t.Fatalf("byProvider amazon: %+v %v", byProvider, err)
	}
}
