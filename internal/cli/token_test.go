package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/bedrock-gateway/gateway/internal/authn"
	"github.com/bedrock-gateway/gateway/internal/sim"
)

// runTokenCmd runs gateway token with vars as the whole environment.
func runTokenCmd(t *testing.T, vars map[string]string, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := Run(context.Background(), append([]string{"token"}, args...), Env{
		Stdout: &out, Stderr: &errOut,
		Getenv: func(k string) string { return vars[k] },
	})
	return out.String(), errOut.String(), err
}

// identityVars are the environment of a member signed in as id.
func identityVars(id sim.Identity, extra map[string]string) map[string]string {
	v := map[string]string{
		"AWS_ACCESS_KEY_ID":     id.AccessKeyID,
		"AWS_SECRET_ACCESS_KEY": id.SecretAccessKey,
		"AWS_SESSION_TOKEN":     id.SessionToken,
	}
	for k, x := range extra {
		v[k] = x
	}
	return v
}

// fetchIdentity verifies tok as the gateway does, against the simulator's
// STS at origin, and returns STS's status and the ARN it answers.
func fetchIdentity(t *testing.T, tok, gatewayID, origin string) (int, string) {
	t.Helper()
	req, err := authn.ParseIAMToken(tok, authn.IAMTokenOptions{GatewayID: gatewayID, AllowedOrigin: origin})
	if err != nil {
		t.Fatalf("ParseIAMToken: %v", err)
	}
	hr, err := http.NewRequestWithContext(t.Context(), http.MethodGet, req.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	hr.Header = req.Header.Clone()
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, ""
	}
	var out struct {
		Arn string `xml:"GetCallerIdentityResult>Arn"`
	}
	if err := xml.Unmarshal(body, &out); err != nil {
		t.Fatalf("STS answer %s: %v", body, err)
	}
	return resp.StatusCode, out.Arn
}

func TestTokenMintsForSimulatorIdentities(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(sim.New(sim.Options{}))
	t.Cleanup(srv.Close)
	const gw = "bgw-o-exampleorg1"
	for _, id := range sim.Identities() {
		t.Run(id.Arn, func(t *testing.T) {
			t.Parallel()
			tests := []struct {
				name string
				vars map[string]string
				args []string
				tok  func(t *testing.T, out string) string
			}{
				{"flag", nil, []string{"--gateway-id", gw}, func(t *testing.T, out string) string {
					return strings.TrimSuffix(out, "\n")
				}},
				{"env export", map[string]string{EnvGatewayID: gw}, []string{"--export"}, func(t *testing.T, out string) string {
					tok, ok := strings.CutPrefix(strings.TrimSuffix(out, "\n"), "export "+EnvBearerToken+"=")
					if !ok {
						t.Fatalf("--export printed %q", out)
					}
					return tok
				}},
				{"json", map[string]string{EnvGatewayID: gw}, []string{"-o", "json"}, func(t *testing.T, out string) string {
					var res tokenResult
					if err := json.Unmarshal([]byte(out), &res); err != nil {
						t.Fatalf("-o json printed %q: %v", out, err)
					}
					if res.GatewayID != gw {
						t.Errorf("gateway_id %q, want %q", res.GatewayID, gw)
					}
					if d := time.Until(res.Expires); d <= 0 || d > 15*time.Minute {
						t.Errorf("expires %v: %v from now, want within 15m", res.Expires, d)
					}
					return res.Token
				}},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					t.Parallel()
					out, stderr, err := runTokenCmd(t, identityVars(id, tt.vars),
						append([]string{"--region", "us-east-1", "--sts-endpoint", srv.URL}, tt.args...)...)
					if err != nil {
						t.Fatalf("gateway token: %v (stderr %q)", err, stderr)
					}
					tok := tt.tok(t, out)
					if status, got := fetchIdentity(t, tok, gw, srv.URL); got != id.Arn {
						t.Errorf("STS says %d %q, want %q", status, got, id.Arn)
					}
				})
			}
		})
	}
}

// A token minted for one gateway does not verify on another: the gateway id
// is a signed header, so STS refuses the signature.
func TestTokenAudience(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(sim.New(sim.Options{}))
	t.Cleanup(srv.Close)
	id := sim.Identities()[0]
	out, _, err := runTokenCmd(t, identityVars(id, nil), "--gateway-id", "bgw-one", "--sts-endpoint", srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if status, arn := fetchIdentity(t, strings.TrimSpace(out), "bgw-two", srv.URL); status != http.StatusForbidden {
		t.Errorf("a token for bgw-one verified on bgw-two: %d %q", status, arn)
	}
}

func TestTokenUsageErrors(t *testing.T) {
	t.Parallel()
	id := sim.Identities()[0]
	tests := []struct {
		name string
		vars map[string]string
		args []string
		want string
	}{
		{"no gateway id", nil, nil, "no gateway id"},
		{"blank gateway id", nil, []string{"--gateway-id", "  "}, "no gateway id"},
		{"gateway id with space", nil, []string{"--gateway-id", "a b"}, "printable ASCII"},
		{"positional", map[string]string{EnvGatewayID: "bgw-x"}, []string{"extra"}, "unexpected argument"},
		{"unknown flag", map[string]string{EnvGatewayID: "bgw-x"}, []string{"--exprot"}, "did you mean --export"},
		{"bad output", map[string]string{EnvGatewayID: "bgw-x"}, []string{"-o", "csv"}, "--output"},
		{"export with json", map[string]string{EnvGatewayID: "bgw-x"}, []string{"--export", "-o", "json"}, "do not go together"},
		{"endpoint with path", map[string]string{EnvGatewayID: "bgw-x"}, []string{"--sts-endpoint", "https://sts.example/x"}, "origin"},
		{"endpoint not http", map[string]string{EnvGatewayID: "bgw-x"}, []string{"--sts-endpoint", "ftp://sts.example"}, "origin"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			out, _, err := runTokenCmd(t, identityVars(id, tt.vars), tt.args...)
			var ue *UsageError
			if !errors.As(err, &ue) {
				t.Fatalf("err = %v, want a usage error", err)
			}
			if strings.Contains(ue.Msg, "\n") || !strings.Contains(ue.Msg, tt.want) {
				t.Errorf("message %q: want one line containing %q", ue.Msg, tt.want)
			}
			if out != "" {
				t.Errorf("printed %q", out)
			}
		})
	}
}

func TestTokenHelp(t *testing.T) {
	t.Parallel()
	_, stderr, err := runTokenCmd(t, nil, "-h")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"--gateway-id", "GATEWAY_ID", "--export", "--profile", "--sts-endpoint", "AWS_BEARER_TOKEN_BEDROCK"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("-h lacks %q:\n%s", want, stderr)
		}
	}
	if strings.Contains(stderr, "admin-url") {
		t.Errorf("-h offers --admin-url, which token does not use:\n%s", stderr)
	}
}

// The region comes from --region, else AWS_REGION of the command's
// environment (never a guess from the instance metadata service).
func TestTokenRegion(t *testing.T) {
	t.Parallel()
	id := sim.Identities()[0]
	tests := []struct {
		name string
		vars map[string]string
		args []string
		want string
	}{
		{"flag", map[string]string{"AWS_REGION": "eu-west-1"}, []string{"--region", "ap-south-1"}, "ap-south-1"},
		{"environment", map[string]string{"AWS_REGION": "eu-west-1"}, nil, "eu-west-1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			out, _, err := runTokenCmd(t, identityVars(id, tt.vars), append([]string{"--gateway-id", "bgw-x", "--sts-endpoint", "http://127.0.0.1:1"}, tt.args...)...)
			if err != nil {
				t.Fatal(err)
			}
			req, err := authn.ParseIAMToken(strings.TrimSpace(out), authn.IAMTokenOptions{GatewayID: "bgw-x", AllowedOrigin: "http://127.0.0.1:1"})
			if err != nil {
				t.Fatal(err)
			}
			if req.Region != tt.want {
				t.Errorf("signed for %q, want %q", req.Region, tt.want)
			}
		})
	}
}
