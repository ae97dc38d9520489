// Command converse calls Bedrock's Converse API through the gateway with the
// official AWS SDK for Go: the only change from calling Bedrock directly is the
// base endpoint. Credentials and region come from the usual AWS environment.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"
)

func main() {
	endpoint := flag.String("endpoint", "http://127.0.0.1:8080", "the gateway's URL")
	model := flag.String("model", "customer-support-llm", "entitlement name (or upstream model ID)")
	stream := flag.Bool("stream", false, "use ConverseStream")
	flag.Parse()
	prompt := strings.Join(flag.Args(), " ")
	if prompt == "" {
		prompt = "Hello"
	}
	if err := run(context.Background(), *endpoint, *model, prompt, *stream); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, endpoint, model, prompt string, stream bool) error {
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return err
	}
	client := bedrockruntime.NewFromConfig(cfg, func(o *bedrockruntime.Options) {
		o.BaseEndpoint = aws.String(endpoint)
	})
	msgs := []types.Message{{Role: types.ConversationRoleUser, Content: []types.ContentBlock{&types.ContentBlockMemberText{Value: prompt}}}}
	if !stream {
		out, err := client.Converse(ctx, &bedrockruntime.ConverseInput{ModelId: aws.String(model), Messages: msgs})
		if err != nil {
			return err
		}
		if m, ok := out.Output.(*types.ConverseOutputMemberMessage); ok {
			for _, c := range m.Value.Content {
				if t, ok := c.(*types.ContentBlockMemberText); ok {
					fmt.Println(t.Value)
				}
			}
		}
		fmt.Printf("usage: %d input, %d output tokens\n", aws.ToInt32(out.Usage.InputTokens), aws.ToInt32(out.Usage.OutputTokens))
		return nil
	}
	out, err := client.ConverseStream(ctx, &bedrockruntime.ConverseStreamInput{ModelId: aws.String(model), Messages: msgs})
	if err != nil {
		return err
	}
	s := out.GetStream()
	defer s.Close()
	for ev := range s.Events() {
		switch e := ev.(type) {
		case *types.ConverseStreamOutputMemberContentBlockDelta:
			if t, ok := e.Value.Delta.(*types.ContentBlockDeltaMemberText); ok {
				fmt.Print(t.Value)
			}
		case *types.ConverseStreamOutputMemberMetadata:
			fmt.Printf("\nusage: %d input, %d output tokens\n", aws.ToInt32(e.Value.Usage.InputTokens), aws.ToInt32(e.Value.Usage.OutputTokens))
		}
	}
	return s.Err()
}
