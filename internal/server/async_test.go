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

// asyncState shares a video model with every account; each may write its
// async output only under its own prefix. video-closed sets no prefixes.
const asyncState = baseState + `
entitlements:
  - name: video
    model: amazon.nova-reel-v1:0
    async_output_prefixes: ["s3://media-out/{account}"]
    shares: [{target: o-testorg0001}]
  - {name: video-closed, model: amazon.nova-reel-v1:0, shares: [{target: o-testorg0001}]}
`

func startVideo(ctx context.Context, c *bedrockruntime.Client, model, s3URI string, token *string) (string, error) {
	out, err := c.StartAsyncInvoke(ctx, &bedrockruntime.StartAsyncInvokeInput{ModelId: aws.String(model), ClientRequestToken: token,
		ModelInput:       document.NewLazyDocument(map[string]any{"taskType": "TEXT_VIDEO", "textToVideoParams": map[string]any{"text": "a cat"}}),
		OutputDataConfig: &brtypes.AsyncInvokeOutputDataConfigMemberS3OutputDataConfig{Value: brtypes.AsyncInvokeS3OutputDataConfig{S3Uri: aws.String(s3URI)}}})
	if err != nil {
		return "", err
	}
	return aws.ToString(out.InvocationArn), nil
}

func listAsync(t *testing.T, c *bedrockruntime.Client) []string {
	t.Helper()
	out, err := c.ListAsyncInvokes(t.Context(), &bedrockruntime.ListAsyncInvokesInput{})
	if err != nil {
		t.Fatal(err)
	}
	var arns []string
	for _, s := range out.AsyncInvokeSummaries {
		arns = append(arns, aws.ToString(s.InvocationArn))
	}
	return arns
}

// TestAsyncInvocationsStayWithTheirAccount: upstream every async invocation is
// the hub's; through the gateway a member sees and reads only its own.
func TestAsyncInvocationsStayWithTheirAccount(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	up := newUpstream(t, sim.Options{})
	g := startGateway(t, gatewayOptions{redis: rs.URL(), upstream: up, stateYAML: asyncState})
	dev := g.client(t, devAKID, devSecret)
	ds := g.client(t, dsAKID, dsSecret)
	ctx := t.Context()
	devARN, err := startVideo(ctx, dev, "video", "s3://media-out/222222222222/clips", nil)
	if err != nil {
		t.Fatal(err)
	}
	dsARN, err := startVideo(ctx, ds, "video", "s3://media-out/333333333333", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := listAsync(t, dev); len(got) != 1 || got[0] != devARN {
		t.Errorf("dev lists %v, want only %s", got, devARN)
	}
	if got := listAsync(t, ds); len(got) != 1 || got[0] != dsARN {
		t.Errorf("ds lists %v, want only %s", got, dsARN)
	}
	if _, err := dev.GetAsyncInvoke(ctx, &bedrockruntime.GetAsyncInvokeInput{InvocationArn: aws.String(devARN)}); err != nil {
		t.Errorf("dev reading its own invocation: %v", err)
	}
	if _, err := dev.GetAsyncInvoke(ctx, &bedrockruntime.GetAsyncInvokeInput{InvocationArn: aws.String(dsARN)}); errCode(err) != "AccessDeniedException" {
		t.Errorf("dev reading ds's invocation: %v", err)
	}
}

// TestAsyncTokenReuseCannotTakeOver: a member replaying another account's
// clientRequestToken starts its own invocation; the first one stays its
// owner's, readable by it and by nobody else.
func TestAsyncTokenReuseCannotTakeOver(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	up := newUpstream(t, sim.Options{})
	g := startGateway(t, gatewayOptions{redis: rs.URL(), upstream: up, stateYAML: asyncState})
	dev := g.client(t, devAKID, devSecret)
	ds := g.client(t, dsAKID, dsSecret)
	ctx := t.Context()
	token := aws.String("nightly-render-0001")
	devARN, err := startVideo(ctx, dev, "video", "s3://media-out/222222222222", token)
	if err != nil {
		t.Fatal(err)
	}
	dsARN, err := startVideo(ctx, ds, "video", "s3://media-out/333333333333", token)
	if err != nil {
		t.Fatal(err)
	}
	if dsARN == devARN {
		t.Fatalf("ds reusing dev's token got dev's invocation %s", devARN)
	}
	// dev's retry with its token is idempotent.
	if again, err := startVideo(ctx, dev, "video", "s3://media-out/222222222222", token); err != nil || again != devARN {
		t.Fatalf("dev's retry: %q, %v; want %s", again, err, devARN)
	}
	if _, err := dev.GetAsyncInvoke(ctx, &bedrockruntime.GetAsyncInvokeInput{InvocationArn: aws.String(devARN)}); err != nil {
		t.Errorf("the owner reading its invocation: %v", err)
	}
	if _, err := ds.GetAsyncInvoke(ctx, &bedrockruntime.GetAsyncInvokeInput{InvocationArn: aws.String(devARN)}); errCode(err) != "AccessDeniedException" {
		t.Errorf("ds reading dev's invocation: %v", err)
	}
	if got := listAsync(t, dev); len(got) != 1 || got[0] != devARN {
		t.Errorf("dev lists %v, want only %s", got, devARN)
	}
}

// TestAsyncOutputLocations: a member writes only where its entitlement allows
// it; an entitlement without async_output_prefixes allows no async job.
func TestAsyncOutputLocations(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	up := newUpstream(t, sim.Options{})
	g := startGateway(t, gatewayOptions{redis: rs.URL(), upstream: up, stateYAML: asyncState})
	ds := g.client(t, dsAKID, dsSecret)
	ctx := t.Context()
	for _, tc := range []struct{ name, model, uri string }{
		{"another account's prefix", "video", "s3://media-out/222222222222/x"},
		{"another bucket", "video", "s3://elsewhere/333333333333"},
		{"no prefixes configured", "video-closed", "s3://media-out/333333333333"},
	} {
		if _, err := startVideo(ctx, ds, tc.model, tc.uri, nil); errCode(err) != "AccessDeniedException" {
			t.Errorf("%s: %v, want AccessDeniedException", tc.name, err)
		}
	}
	if got := listAsync(t, ds); len(got) != 0 {
		t.Errorf("refused starts left invocations: %v", got)
	}
}
