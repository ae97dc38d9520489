package server

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/document"
	brtypes "github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"

	"github.com/bedrock-gateway/gateway/internal/sim"
	"github.com/bedrock-gateway/gateway/internal/testutil/redistest"
)

// TestAsyncInvocationsStayWithTheirAccount: upstream every async invocation is
// the hub's; through the gateway a member sees and reads only its own.
func TestAsyncInvocationsStayWithTheirAccount(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	up := newUpstream(t, sim.Options{})
	st := baseState + `
entitlements:
  - {name: video, model: amazon.nova-reel-v1:0, shares: [{target: o-testorg0001}]}
`
	g := startGateway(t, gatewayOptions{redis: rs.URL(), upstream: up, stateYAML: st})
	dev := g.client(t, devAKID, devSecret)
	ds := g.client(t, dsAKID, dsSecret)
	ctx := context.Background()
	start := func(c *bedrockruntime.Client) string {
		out, err := c.StartAsyncInvoke(ctx, &bedrockruntime.StartAsyncInvokeInput{ModelId: aws.String("video"),
			ModelInput:       document.NewLazyDocument(map[string]any{"taskType": "TEXT_VIDEO", "textToVideoParams": map[string]any{"text": "a cat"}}),
			OutputDataConfig: &brtypes.AsyncInvokeOutputDataConfigMemberS3OutputDataConfig{Value: brtypes.AsyncInvokeS3OutputDataConfig{S3Uri: aws.String("s3://bucket/out")}}})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(out.InvocationArn)
	}
	devARN, dsARN := start(dev), start(ds)
	list := func(c *bedrockruntime.Client) []string {
		out, err := c.ListAsyncInvokes(ctx, &bedrockruntime.ListAsyncInvokesInput{})
		if err != nil {
			t.Fatal(err)
		}
		var arns []string
		for _, s := range out.AsyncInvokeSummaries {
			arns = append(arns, aws.ToString(s.InvocationArn))
		}
		return arns
	}
	if got := list(dev); len(got) != 1 || got[0] != devARN {
		t.Errorf("dev lists %v, want only %s", got, devARN)
	}
	if got := list(ds); len(got) != 1 || got[0] != dsARN {
		t.Errorf("ds lists %v, want only %s", got, dsARN)
	}
	if _, err := dev.GetAsyncInvoke(ctx, &bedrockruntime.GetAsyncInvokeInput{InvocationArn: aws.String(devARN)}); err != nil {
		t.Errorf("dev reading its own invocation: %v", err)
	}
	if _, err := dev.GetAsyncInvoke(ctx, &bedrockruntime.GetAsyncInvokeInput{InvocationArn: aws.String(dsARN)}); errCode(err) != "AccessDeniedException" {
		t.Errorf("dev reading ds's invocation: %v", err)
	}
}
