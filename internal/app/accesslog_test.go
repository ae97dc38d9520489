package app

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	brtypes "github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"

	"github.com/bedrock-gateway/gateway/internal/testutil/wait"
)

// TestAccessLogFlushedOnShutdown: the access log is written asynchronously
// (internal/asynclog), yet when serve returns after a clean shutdown every
// request answered has its line on stderr, in the order answered.
func TestAccessLogFlushedOnShutdown(t *testing.T) {
	t.Parallel()
	var stdout, stderr syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- Main(ctx, []string{"serve", "--simulate", "--bootstrap", "../../deploy/examples/state.yaml",
			"--listen", "127.0.0.1:0", "--ops-listen", "127.0.0.1:0", "--log-format", "json"},
			Env{Stdout: &stdout, Stderr: &stderr, Getenv: func(string) string { return "" },
				LookupEnv: func(string) (string, bool) { return "", false }})
	}()
	re := regexp.MustCompile(`serving Bedrock Runtime on (http://\S+) `)
	var m []string
	wait.Until(t, "the ready message", 60*time.Second, func() error {
		if m = re.FindStringSubmatch(stdout.String()); m == nil {
			return fmt.Errorf("output so far:\n%s", stdout.String())
		}
		return nil
	})
	client := bedrockruntime.New(bedrockruntime.Options{BaseEndpoint: aws.String(m[1]), Region: "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("GWEXAMPLE00000000002", "not-for-production-0000000000", ""),
		Retryer:     aws.NopRetryer{}})
	// Call i has i+1 words, so the simulator reports i+1 input tokens: the
	// access log's input_tokens name the call.
	const calls = 40
	var want []string
	for i := range calls {
		resp, err := client.Converse(context.Background(), &bedrockruntime.ConverseInput{ModelId: aws.String("customer-support-llm"),
			Messages: []brtypes.Message{{Role: brtypes.ConversationRoleUser, Content: []brtypes.ContentBlock{&brtypes.ContentBlockMemberText{Value: strings.Repeat("hello ", i+1)}}}}})
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		if got := aws.ToInt32(resp.Usage.InputTokens); got != int32(i+1) {
			t.Fatalf("call %d: %d input tokens", i, got)
		}
		want = append(want, fmt.Sprint(i+1))
	}
	cancel() // shut down at once: lines still buffered must not be lost
	if err := <-done; err != nil {
		t.Fatalf("serve: %v", err)
	}
	var logged []string
	sc := bufio.NewScanner(strings.NewReader(stderr.String()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var line struct {
			Msg         string `json:"msg"`
			InputTokens int64  `json:"input_tokens"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("not a JSON log line: %q", sc.Text())
		}
		if line.Msg == "request" {
			logged = append(logged, fmt.Sprint(line.InputTokens))
		}
	}
	if strings.Join(logged, ",") != strings.Join(want, ",") {
		t.Errorf("access log lines by input tokens\n%v\nwant\n%v", logged, want)
	}
}
