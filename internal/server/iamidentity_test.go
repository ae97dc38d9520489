package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/smithy-go/auth/bearer"

	"github.com/bedrock-gateway/gateway/internal/report"
	"github.com/bedrock-gateway/gateway/internal/sim"
	"github.com/bedrock-gateway/gateway/internal/testutil/prereq"
	"github.com/bedrock-gateway/gateway/internal/testutil/redistest"
	"github.com/bedrock-gateway/gateway/internal/testutil/wait"
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

	t.Run("usage by principal", func(t *testing.T) {
		// The ledger records the role, not the session, and the user; the
		// report groups by it. Settlements are queued: wait for them.
		month := time.Now().In(time.UTC).Format("2006-01")
		want := map[string]bool{
			"arn:aws:iam::222222222222:role/support-bot": true,
			"arn:aws:iam::222222222222:user/support-dev": true,
		}
		var rep report.Report
		wait.Until(t, "usage by principal", 20*time.Second, func() error {
			rep = report.Report{}
			if code := g.admin(t, http.MethodGet, "/admin/v1/usage?month="+month+"&group_by=principal", nil, &rep); code != http.StatusOK {
				return fmt.Errorf("usage: HTTP %d", code)
			}
			got := map[string]bool{}
			for _, r := range rep.Rows {
				if r.Requests > 0 {
					got[r.Principal] = true
				}
			}
			if len(got) != len(want) || !got["arn:aws:iam::222222222222:role/support-bot"] || !got["arn:aws:iam::222222222222:user/support-dev"] {
				return fmt.Errorf("principals with usage %v, want %v", got, want)
			}
			return nil
		})
		if rep.GroupBy != "principal" {
			t.Fatalf("group_by %q", rep.GroupBy)
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

// TestIAMIdentityJavaScriptRecipe runs the README's JavaScript minting recipe
// (its js block, verbatim) with the official AWS SDK for JavaScript v3: a
// token minted by @smithy/signature-v4 for a simulator identity, sent by the
// client's token provider over TLS, is accepted; the provider is asked once
// for two calls. Skips without node and npm, as TestJavaScriptSDK does.
func TestIAMIdentityJavaScriptRecipe(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("installs the JavaScript SDK")
	}
	node := prereq.Program(t, "node", "apt-get install nodejs")
	npm := prereq.Program(t, "npm", "apt-get install npm")
	dir := jsModules(t, npm)
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := strings.Cut(string(readme), "```js\n")
	block, _, ok2 := strings.Cut(block, "```")
	if !ok || !ok2 || !strings.Contains(block, "export async function mintToken") {
		t.Fatal("README has no JavaScript minting recipe (a js block exporting mintToken)")
	}
	// Unique names: the module directory is shared between test runs; the
	// files must be in it for node to resolve the SDK's packages.
	mint, err := os.CreateTemp(dir, "mint-*.mjs")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(mint.Name()) })
	if _, err := mint.WriteString(block); err != nil {
		t.Fatal(err)
	}
	mint.Close()
	script, err := os.ReadFile(filepath.Join(dir, "iamtoken.mjs"))
	if err != nil {
		t.Fatal(err)
	}
	runner := strings.TrimSuffix(mint.Name(), ".mjs") + "-run.mjs"
	script = []byte(strings.Replace(string(script), `"./mint.mjs"`, strconv.Quote("./"+filepath.Base(mint.Name())), 1))
	if err := os.WriteFile(runner, script, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(runner) })

	rs := redistest.Start(t)
	up := newUpstream(t, sim.Options{})
	certFile, keyFile, _ := selfSignedCert(t, t.TempDir(), "gw")
	g := startGateway(t, gatewayOptions{redis: rs.URL(), upstream: up, stateYAML: iamState,
		args: []string{"--tls-cert", certFile, "--tls-key", keyFile, "--iam-identity", "--sts-endpoint", up.srv.URL}})
	id := simIdentity(t, ":assumed-role/support-bot/sim")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, runner)
	cmd.Dir = dir
	// Only what the recipe needs: the credential chain must find these keys,
	// not a profile or instance role of the machine.
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "AWS_EC2_METADATA_DISABLED=true",
		"NODE_EXTRA_CA_CERTS=" + certFile, "NODE_NO_WARNINGS=1",
		"AWS_ACCESS_KEY_ID=" + id.AccessKeyID, "AWS_SECRET_ACCESS_KEY=" + id.SecretAccessKey, "AWS_SESSION_TOKEN=" + id.SessionToken,
		"GATEWAY_ENDPOINT=" + g.endpoint(), "GATEWAY_ID=" + g.GatewayID(), "STS_ENDPOINT=" + up.srv.URL, "MODEL=direct"}
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("node: %v\n%s%s", err, out.String(), errOut.String())
	}
	var res struct {
		Error        string
		Mints        int
		OutputTokens int
	}
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("node printed %q: %v", out.String(), err)
	}
	if res.Error != "" || res.OutputTokens != 12 || res.Mints != 1 {
		t.Fatalf("JavaScript recipe: %+v\n%s", res, errOut.String())
	}
}
