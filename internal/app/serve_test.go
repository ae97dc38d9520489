package app

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	brtypes "github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"
	"github.com/aws/smithy-go/auth/bearer"

	"github.com/bedrock-gateway/gateway/internal/config"
	"github.com/bedrock-gateway/gateway/internal/testutil/redistest"
	"github.com/bedrock-gateway/gateway/internal/testutil/wait"
)

// syncBuffer is a concurrency-safe writer the server prints into.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// makeRun is the command line of the Makefile's run target: the environment
// it sets and the arguments of `gateway serve`, with make variables expanded
// to their defaults.
func makeRun(t *testing.T) (env map[string]string, args []string) {
	t.Helper()
	data, err := os.ReadFile("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{}
	varRe := regexp.MustCompile(`^([A-Z_]+)\s*\??=\s*(.*)$`)
	var recipe []string
	inRun := false
	for _, line := range strings.Split(string(data), "\n") {
		if m := varRe.FindStringSubmatch(line); m != nil {
			vars[m[1]] = strings.TrimSpace(m[2])
		}
		switch {
		case strings.HasPrefix(line, "run:"):
			inRun = true
		case inRun && strings.HasPrefix(line, "\t"):
			recipe = append(recipe, strings.TrimSuffix(strings.TrimSpace(line), "\\"))
		case inRun:
			inRun = false
		}
	}
	if len(recipe) == 0 {
		t.Fatal("the Makefile has no run target")
	}
	words := strings.Fields(regexp.MustCompile(`\$\(([A-Z_]+)\)`).ReplaceAllStringFunc(strings.Join(recipe, " "), func(v string) string {
		return vars[v[2:len(v)-1]]
	}))
	env = map[string]string{}
	for len(words) > 0 && strings.Contains(words[0], "=") && !strings.HasPrefix(words[0], "-") {
		k, v, _ := strings.Cut(words[0], "=")
		env[k] = v
		words = words[1:]
	}
	want := []string{vars["GO"], "run", "./cmd/gateway", "serve"}
	if len(words) < len(want) || !slices.Equal(words[:len(want)], want) {
		t.Fatalf("make run runs %q, want %q first", words, want)
	}
	return env, words[len(want):]
}

// flagArg returns the value of --name in args.
func flagArg(args []string, name string) string {
	for i, a := range args {
		if (a == "--"+name || a == "-"+name) && i+1 < len(args) {
			return args[i+1]
		}
	}
	return ""
}

// TestMakeRunCommandLine: make run listens on loopback only and passes no
// secret on the command line (serve would refuse it), its admin token
// coming from the environment.
func TestMakeRunCommandLine(t *testing.T) {
	t.Parallel()
	env, args := makeRun(t)
	for _, name := range []string{"listen", "ops-listen"} {
		host, _, err := net.SplitHostPort(flagArg(args, name))
		if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
			t.Errorf("make run: --%s %q, want a loopback address", name, flagArg(args, name))
		}
	}
	if env["GATEWAY_ADMIN_TOKEN"] == "" {
		t.Error("make run sets no GATEWAY_ADMIN_TOKEN")
	}
	if _, err := config.Load(args, func(k string) string { return env[k] }, io.Discard); err != nil {
		t.Errorf("gateway serve refuses make run's configuration: %v", err)
	}
}

// TestMakeRun is what `make run` does (its command line, read from the
// Makefile, on free ports): serve on embedded defaults (in-process Redis, the
// built-in simulator, the example organization), print a ready call, and
// answer it, with quotas and the ledger on the embedded Redis.
func TestMakeRun(t *testing.T) {
	t.Parallel()
	runEnv, args := makeRun(t)
	for i := 1; i < len(args); i++ {
		switch args[i-1] {
		case "--listen", "--ops-listen":
			args[i] = "127.0.0.1:0"
		case "--bootstrap", "--prices-file":
			args[i] = "../../" + args[i]
		}
	}
	args = append(args, "--log-level", "warn")
	var out syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Main(ctx, append([]string{"serve"}, args...),
			Env{Stdout: &out, Stderr: io.Discard, Getenv: func(k string) string { return runEnv[k] },
				LookupEnv: func(k string) (string, bool) { v, ok := runEnv[k]; return v, ok }})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()
	re := regexp.MustCompile(`AWS_ACCESS_KEY_ID=(\S+) AWS_SECRET_ACCESS_KEY=(\S+) .*\n\s+go run ./examples/converse -endpoint (\S+) -model (\S+)`)
	var m []string
	wait.Until(t, "the ready message", 60*time.Second, func() error {
		if m = re.FindStringSubmatch(out.String()); m == nil {
			return fmt.Errorf("output so far:\n%s", out.String())
		}
		return nil
	})
	// make run serves TLS with a generated certificate; the banner names
	// its CA file, as AWS_CA_BUNDLE in the printed commands.
	if !strings.HasPrefix(m[3], "https://") {
		t.Fatalf("make run serves %s, want https", m[3])
	}
	// The web console's URL, with the token make run gives.
	if !regexp.MustCompile(`Web console: http://127\.0\.0\.1:\d+/console/ \(sign in with the admin token \S+\)`).MatchString(out.String()) {
		t.Errorf("no web console URL in the ready message:\n%s", out.String())
	}
	caRe := regexp.MustCompile(`AWS_CA_BUNDLE=(\S+)`)
	ca := caRe.FindStringSubmatch(out.String())
	if ca == nil {
		t.Fatalf("no CA file in the ready message:\n%s", out.String())
	}
	httpClient := caClient(t, ca[1])
	converse := func(client *bedrockruntime.Client) error {
		resp, err := client.Converse(context.Background(), &bedrockruntime.ConverseInput{ModelId: aws.String(m[4]),
			Messages: []brtypes.Message{{Role: brtypes.ConversationRoleUser, Content: []brtypes.ContentBlock{&brtypes.ContentBlockMemberText{Value: "Hello"}}}}})
		if err == nil && aws.ToInt32(resp.Usage.OutputTokens) == 0 {
			err = errors.New("no usage")
		}
		return err
	}
	client := bedrockruntime.New(bedrockruntime.Options{BaseEndpoint: aws.String(m[3]), Region: "us-east-1", HTTPClient: httpClient,
		Credentials: credentials.NewStaticCredentialsProvider(m[1], m[2], ""), Retryer: aws.NopRetryer{}})
	for i := 0; i < 3; i++ {
		if err := converse(client); err != nil {
			t.Fatalf("the printed call failed: %v", err)
		}
	}

	// The IAM identity demo: the printed gateway token command mints a token
	// for a simulator identity, and the printed call with it succeeds.
	iamRe := regexp.MustCompile(`AWS_ACCESS_KEY_ID=(\S+) AWS_SECRET_ACCESS_KEY=(\S+) AWS_REGION=us-east-1 \\\n\s+go run ./cmd/gateway (token .*--export)\)"\n\s+AWS_REGION=us-east-1 AWS_CA_BUNDLE=\S+ go run ./examples/converse -endpoint (\S+) -model (\S+)`)
	iam := iamRe.FindStringSubmatch(out.String())
	if iam == nil {
		t.Fatalf("no IAM identity demo in the ready message:\n%s", out.String())
	}
	var tokOut bytes.Buffer
	tokEnv := map[string]string{"AWS_ACCESS_KEY_ID": iam[1], "AWS_SECRET_ACCESS_KEY": iam[2], "AWS_REGION": "us-east-1"}
	if err := Main(context.Background(), strings.Fields(iam[3]), Env{Stdout: &tokOut, Stderr: io.Discard,
		Getenv: func(k string) string { return tokEnv[k] }}); err != nil {
		t.Fatalf("the printed gateway token failed: %v", err)
	}
	tok, ok := strings.CutPrefix(strings.TrimSpace(tokOut.String()), "export AWS_BEARER_TOKEN_BEDROCK=")
	if !ok {
		t.Fatalf("gateway token --export printed %q", tokOut.String())
	}
	bearerClient := bedrockruntime.New(bedrockruntime.Options{BaseEndpoint: aws.String(iam[4]), Region: "us-east-1", HTTPClient: httpClient,
		BearerAuthTokenProvider: bearer.StaticTokenProvider{Token: bearer.Token{Value: tok}},
		AuthSchemePreference:    []string{"httpBearerAuth"}, Retryer: aws.NopRetryer{}})
	if err := converse(bearerClient); err != nil {
		t.Fatalf("the printed call with an IAM identity token failed: %v", err)
	}
	if !strings.Contains(out.String(), "make run LISTEN=") {
		t.Errorf("the ready message does not say how to choose other ports:\n%s", out.String())
	}
	opsRe := regexp.MustCompile(`admin API on (http://\S+)\)`)
	ops := opsRe.FindStringSubmatch(out.String())
	if ops == nil {
		t.Fatalf("no ops address in %q", out.String())
	}
	req, _ := http.NewRequest("GET", ops[1]+"/admin/v1/usage?group_by=team&format=csv", nil)
	_, adminToken, _ := config.SplitToken(runEnv["GATEWAY_ADMIN_TOKEN"])
	req.Header.Set("Authorization", "Bearer "+adminToken)
	// Settlements are written asynchronously.
	wait.Until(t, "the usage report on the embedded Redis to count the calls", 10*time.Second, func() error {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(b), "development,,,,4,") {
			return fmt.Errorf("report:\n%s", b)
		}
		return nil
	})
}

// TestBannerWaitsForReady: while the state cannot be loaded (Redis down at
// start), /readyz answers 503 and no "is serving" banner is printed; once
// Redis is up and the snapshot loaded, the banner comes and /readyz is ready.
func TestBannerWaitsForReady(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	rs.Stop()
	opsAddr := freeAddr(t)
	var out syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	env := map[string]string{"GATEWAY_REDIS_URL": rs.URL()}
	go func() {
		done <- Main(ctx, []string{"serve", "--listen", "127.0.0.1:0", "--ops-listen", opsAddr, "--log-level", "error",
			"--upstream-endpoint", "http://127.0.0.1:9", "--region", "us-east-1"},
			Env{Stdout: &out, Stderr: io.Discard, Getenv: func(k string) string { return env[k] },
				LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }})
	}()
	defer func() {
		cancel()
		<-done
	}()
	readyz := func() int {
		resp, err := http.Get("http://" + opsAddr + "/readyz")
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	deadline := time.Now().Add(30 * time.Second)
	for readyz() != http.StatusServiceUnavailable {
		if time.Now().After(deadline) {
			t.Fatal("/readyz never answered 503 while Redis was down")
		}
		time.Sleep(20 * time.Millisecond) // polling for the listener
	}
	if strings.Contains(out.String(), "is serving") {
		t.Fatalf("banner printed while /readyz answers 503:\n%s", out.String())
	}
	rs.Restart()
	for !strings.Contains(out.String(), "is serving") {
		if time.Now().After(deadline.Add(30 * time.Second)) {
			t.Fatal("no banner after Redis came up")
		}
		time.Sleep(20 * time.Millisecond) // polling for the banner
	}
	if code := readyz(); code != http.StatusOK {
		t.Fatalf("/readyz %d after the banner", code)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// caClient is an HTTP client trusting only the CA in caFile.
func caClient(t *testing.T, caFile string) *http.Client {
	t.Helper()
	pem, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("no certificate in %s", caFile)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}
