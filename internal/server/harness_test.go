package server

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"log/slog"
	"maps"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	brtypes "github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"

	"github.com/bedrock-gateway/gateway/internal/authn"
	"github.com/bedrock-gateway/gateway/internal/config"
	"github.com/bedrock-gateway/gateway/internal/sim"
	"github.com/bedrock-gateway/gateway/internal/testutil/leakcheck"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

const (
	hubAKID    = "AKIDHUB0000000000001"
	hubSecret  = "hub-secret-0000000000000000000000000000"
	adminToken = "test-admin-token-0123456789"
	devAKID    = "GWTEST00000000000001"
	devSecret  = "dev-secret-0000000000000000000000000000"
	dsAKID     = "GWTEST00000000000003"
	dsSecret   = "ds-secret-00000000000000000000000000000"
	mktAKID    = "GWTEST00000000000004"
	mktSecret  = "mkt-secret-0000000000000000000000000000"
	haiku      = "anthropic.claude-3-5-haiku-20241022-v1:0"
)

// baseState is the organization most tests use: a nested OU tree, three teams.
const baseState = `
organization:
  id: o-testorg0001
  root: r-ab12
  hub_account: "111111111111"
  units:
    - {id: ou-ab12-platform, name: Platform}
    - {id: ou-ab12-dev00001, name: Development, parent: ou-ab12-platform}
    - {id: ou-ab12-devteam1, name: Dev Team One, parent: ou-ab12-dev00001}
    - {id: ou-ab12-ds000001, name: Data Science}
    - {id: ou-ab12-mkt00001, name: Marketing}
  accounts:
    - {id: "111111111111", name: hub}
    - {id: "222222222222", name: support-bot, unit: ou-ab12-devteam1, team: development}
    - {id: "333333333333", name: ds-lab, unit: ou-ab12-ds000001, team: data-science}
    - {id: "444444444444", name: campaigns, unit: ou-ab12-mkt00001, team: marketing}
credentials:
  - {account: "222222222222", kind: sigv4, label: dev, access_key_id: ` + devAKID + `, secret: ` + devSecret + `}
  - {account: "333333333333", kind: sigv4, label: ds, access_key_id: ` + dsAKID + `, secret: ` + dsSecret + `}
  - {account: "444444444444", kind: sigv4, label: mkt, access_key_id: ` + mktAKID + `, secret: ` + mktSecret + `}
`

// upstream is a simulator the gateways under test call, verifying hub signatures.
type upstream struct {
	sim *sim.Simulator
	srv *httptest.Server
}

func newUpstream(t *testing.T, opts sim.Options) *upstream {
	t.Helper()
	lookup, err := authn.NewStaticLookup(&authn.Credential{ID: hubAKID, Account: "111111111111", Kind: authn.KindSigV4, Secret: hubSecret})
	if err != nil {
		t.Fatal(err)
	}
	v := authn.NewVerifier(authn.Options{})
	opts.Verify = func(r *http.Request, body []byte) error { return authn.VerifyStatic(v, r, body, lookup) }
	opts.VerifyStream = authn.StreamVerifier(v, lookup)
	u := &upstream{sim: sim.New(opts)}
	u.srv = httptest.NewUnstartedServer(u.sim)
	u.srv.Config.Protocols = h1AndH2C() // the bidirectional stream needs HTTP/2
	u.srv.Start()
	t.Cleanup(u.srv.Close)
	return u
}

// gateway is one replica running in-process.
type gateway struct {
	*Server
	cancel  context.CancelFunc
	done    chan error
	stopped sync.Once
}

// stop shuts the replica down and waits until it has; a test may stop a
// replica before its cleanup does (a restart).
func (g *gateway) stop() {
	g.stopped.Do(func() {
		g.cancel()
		<-g.done
	})
}

type gatewayOptions struct {
	redis     string // redis:// URL
	upstream  *upstream
	stateYAML string // bootstrap file content
	args      []string
	env       map[string]string // GATEWAY_* settings besides the admin token
	logs      io.Writer         // also gets the log (warnings and up), when set
}

func startGateway(t *testing.T, o gatewayOptions) *gateway {
	t.Helper()
	args := []string{"--listen", "127.0.0.1:0", "--ops-listen", "127.0.0.1:0",
		"--log-level", "warn", "--shutdown-timeout", "10s",
		"--drain-timeout", "5s", "--reservation-ttl", "2m",
		// Under -race with hundreds of clients on two cores a Redis reply can take
		// longer than the production default; a timeout would read as an outage.
		"--redis-timeout", "5s"}
	if o.stateYAML != "" {
		path := filepath.Join(t.TempDir(), "state.yaml")
		if err := os.WriteFile(path, []byte(o.stateYAML), 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--bootstrap", path)
	}
	args = append(args, o.args...)
	// Secrets (the token, a Redis URL with a password) are never flags.
	env := map[string]string{"GATEWAY_ADMIN_TOKEN": "test=" + adminToken, "GATEWAY_REDIS_URL": o.redis}
	maps.Copy(env, o.env)
	cfg, err := config.Load(args, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var logTo io.Writer = testWriter{t}
	if o.logs != nil {
		logTo = io.MultiWriter(logTo, o.logs)
	}
	log := slog.New(slog.NewTextHandler(logTo, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := New(ctx, cfg, Deps{Logger: log, UpstreamURL: o.upstream.srv.URL,
		UpstreamCreds: credentials.NewStaticCredentialsProvider(hubAKID, hubSecret, "")})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	g := &gateway{Server: srv, cancel: cancel, done: make(chan error, 1)}
	go func() { g.done <- srv.Run(ctx) }()
	t.Cleanup(g.stop)
	return g
}

// testWriter sends log lines to t.Log (only shown on failure or -v).
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func (g *gateway) endpoint() string {
	if g.TLS() {
		return "https://" + g.DataAddr()
	}
	return "http://" + g.DataAddr()
}

func (g *gateway) client(t *testing.T, akid, secret string, optFns ...func(*bedrockruntime.Options)) *bedrockruntime.Client {
	t.Helper()
	return bedrockruntime.New(bedrockruntime.Options{
		BaseEndpoint: aws.String(g.endpoint()),
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider(akid, secret, ""),
		Retryer:      aws.NopRetryer{},
		HTTPClient:   sim.SDKHTTPClient(&http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}),
	}, optFns...)
}

// admin calls the admin API and decodes a JSON answer into out (when not nil).
func (g *gateway) admin(t *testing.T, method, path string, body any, out any) int {
	t.Helper()
	var rd io.Reader
	ct := ""
	switch b := body.(type) {
	case nil:
	case string:
		rd, ct = strings.NewReader(b), "text/csv"
	default:
		data, _ := json.Marshal(b)
		rd, ct = bytes.NewReader(data), "application/json"
	}
	req, _ := http.NewRequest(method, "http://"+g.OpsAddr()+path, rd)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: decoding %s: %v", method, path, data, err)
		}
	}
	if resp.StatusCode >= 300 && out != nil {
		t.Logf("%s %s: %d %s", method, path, resp.StatusCode, data)
	}
	return resp.StatusCode
}

func userMessage(text string) []brtypes.Message {
	return []brtypes.Message{{Role: brtypes.ConversationRoleUser, Content: []brtypes.ContentBlock{&brtypes.ContentBlockMemberText{Value: text}}}}
}

func converse(ctx context.Context, c *bedrockruntime.Client, model string, maxTokens int32) (*bedrockruntime.ConverseOutput, error) {
	return c.Converse(ctx, &bedrockruntime.ConverseInput{ModelId: aws.String(model), Messages: userMessage("hello there gateway"),
		InferenceConfig: &brtypes.InferenceConfiguration{MaxTokens: aws.Int32(maxTokens)}})
}

// selfSignedCert writes a certificate for 127.0.0.1 and returns the file paths and a pool trusting it.
func selfSignedCert(t *testing.T, dir, name string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	writeAtomic(t, certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	writeAtomic(t, keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}))
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

func writeAtomic(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func tlsClient(pool *x509.CertPool, h2 bool) *http.Client {
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: h2, MaxIdleConnsPerHost: 64}
	return &http.Client{Transport: tr}
}

func staticCreds(akid, secret string) aws.CredentialsProvider {
	return credentials.NewStaticCredentialsProvider(akid, secret, "")
}
