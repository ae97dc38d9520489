package app

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	brtypes "github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"
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

// TestMakeRun is what `make run` does: serve on embedded defaults (in-process
// Redis, the built-in simulator, the example organization), print a ready
// call, and answer it, with quotas and the ledger on the embedded Redis.
func TestMakeRun(t *testing.T) {
	t.Parallel()
	var out syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Main(ctx, []string{"serve", "--simulate", "--bootstrap", "../../deploy/examples/state.yaml",
			"--prices-file", "../../deploy/examples/prices.yaml", "--listen", "127.0.0.1:0", "--ops-listen", "127.0.0.1:0",
			"--admin-token", "dev=dev-admin-token-change-me", "--log-level", "warn"},
			Env{Stdout: &out, Stderr: io.Discard, Getenv: func(string) string { return "" }, LookupEnv: func(string) (string, bool) { return "", false }})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()
	re := regexp.MustCompile(`AWS_ACCESS_KEY_ID=(\S+) AWS_SECRET_ACCESS_KEY=(\S+) .*\n\s+go run ./examples/converse -endpoint (\S+) -model (\S+)`)
	var m []string
	deadline := time.Now().Add(60 * time.Second)
	for m == nil {
		if time.Now().After(deadline) {
			t.Fatalf("no ready message:\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond) // polling for the ready message
		m = re.FindStringSubmatch(out.String())
	}
	client := bedrockruntime.New(bedrockruntime.Options{BaseEndpoint: aws.String(m[3]), Region: "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider(m[1], m[2], ""), Retryer: aws.NopRetryer{}})
	for i := 0; i < 3; i++ {
		resp, err := client.Converse(context.Background(), &bedrockruntime.ConverseInput{ModelId: aws.String(m[4]),
			Messages: []brtypes.Message{{Role: brtypes.ConversationRoleUser, Content: []brtypes.ContentBlock{&brtypes.ContentBlockMemberText{Value: "Hello"}}}}})
		if err != nil {
			t.Fatalf("the printed call failed: %v", err)
		}
		if aws.ToInt32(resp.Usage.OutputTokens) == 0 {
			t.Fatal("no usage")
		}
	}
	opsRe := regexp.MustCompile(`admin API on (http://\S+)\)`)
	ops := opsRe.FindStringSubmatch(out.String())
	if ops == nil {
		t.Fatalf("no ops address in %q", out.String())
	}
	req, _ := http.NewRequest("GET", ops[1]+"/admin/v1/usage?group_by=team&format=csv", nil)
	req.Header.Set("Authorization", "Bearer dev-admin-token-change-me")
	var body string
	deadline = time.Now().Add(10 * time.Second)
	for !strings.Contains(body, "development,,,,3,") {
		if time.Now().After(deadline) {
			t.Fatalf("usage report on the embedded Redis:\n%s", body)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		body = string(b)
		time.Sleep(20 * time.Millisecond) // settlements are written asynchronously
	}
}
