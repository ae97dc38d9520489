package proxy

import (
	"context"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	brtypes "github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"
	"github.com/aws/smithy-go"

	"github.com/bedrock-gateway/gateway/internal/bedrock"
	"github.com/bedrock-gateway/gateway/internal/testutil/sdktest"
)

// Service tiers, latency modes and guardrails are the entitlement's to
// allow, whether a member chooses them in headers (InvokeModel*), in the body
// (Converse*) or in the path (ApplyGuardrail). support-llm allows priority,
// optimized latency and guardrail abc123; nova allows nothing beyond the
// default tier.
func TestOptionsGovernedByEntitlement(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	ctx := context.Background()
	anthropic := []byte(`{"anthropic_version":"bedrock-2023-05-31","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}`)
	nova := []byte(`{"messages":[{"role":"user","content":[{"text":"hi"}]}],"inferenceConfig":{"max_new_tokens":5}}`)
	hubARN := "arn:aws:bedrock:us-east-1:111111111111:guardrail/abc123"
	converse := func(model string, mod func(*bedrockruntime.ConverseInput)) func(*bedrockruntime.Client) error {
		return func(c *bedrockruntime.Client) error {
			in := &bedrockruntime.ConverseInput{ModelId: aws.String(model), Messages: userMessage("hi"),
				InferenceConfig: &brtypes.InferenceConfiguration{MaxTokens: aws.Int32(5)}}
			mod(in)
			_, err := c.Converse(ctx, in)
			return err
		}
	}
	converseStream := func(model string, mod func(*bedrockruntime.ConverseStreamInput)) func(*bedrockruntime.Client) error {
		return func(c *bedrockruntime.Client) error {
			in := &bedrockruntime.ConverseStreamInput{ModelId: aws.String(model), Messages: userMessage("hi"),
				InferenceConfig: &brtypes.InferenceConfiguration{MaxTokens: aws.Int32(5)}}
			mod(in)
			out, err := c.ConverseStream(ctx, in)
			if err != nil {
				return err
			}
			for range out.GetStream().Events() {
			}
			return out.GetStream().Err()
		}
	}
	invoke := func(model string, body []byte, mod func(*bedrockruntime.InvokeModelInput)) func(*bedrockruntime.Client) error {
		return func(c *bedrockruntime.Client) error {
			in := &bedrockruntime.InvokeModelInput{ModelId: aws.String(model), Body: body, ContentType: aws.String("application/json")}
			mod(in)
			_, err := c.InvokeModel(ctx, in)
			return err
		}
	}
	invokeStream := func(model string, body []byte, mod func(*bedrockruntime.InvokeModelWithResponseStreamInput)) func(*bedrockruntime.Client) error {
		return func(c *bedrockruntime.Client) error {
			in := &bedrockruntime.InvokeModelWithResponseStreamInput{ModelId: aws.String(model), Body: body, ContentType: aws.String("application/json")}
			mod(in)
			out, err := c.InvokeModelWithResponseStream(ctx, in)
			if err != nil {
				return err
			}
			for range out.GetStream().Events() {
			}
			return out.GetStream().Err()
		}
	}
	applyGuardrail := func(id string) func(*bedrockruntime.Client) error {
		return func(c *bedrockruntime.Client) error {
			_, err := c.ApplyGuardrail(ctx, &bedrockruntime.ApplyGuardrailInput{GuardrailIdentifier: aws.String(id), GuardrailVersion: aws.String("1"),
				Source: brtypes.GuardrailContentSourceInput, Content: []brtypes.GuardrailContentBlock{&brtypes.GuardrailContentBlockMemberText{Value: brtypes.GuardrailTextBlock{Text: aws.String("hello")}}}})
			return err
		}
	}
	tier := func(t brtypes.ServiceTierType) *brtypes.ServiceTier { return &brtypes.ServiceTier{Type: t} }
	latency := func(l brtypes.PerformanceConfigLatency) *brtypes.PerformanceConfiguration {
		return &brtypes.PerformanceConfiguration{Latency: l}
	}

	for _, tc := range []struct {
		name     string
		call     func(*bedrockruntime.Client) error
		headers  []string // extra request headers, set through the SDK
		wantErr  string   // error code; empty: allowed
		wantTier string   // the tier recorded with the usage, when allowed and metered
	}{
		{"Converse default", converse("nova", func(*bedrockruntime.ConverseInput) {}), nil, "", "default"},
		{"Converse default named", converse("nova", func(in *bedrockruntime.ConverseInput) { in.ServiceTier = tier(brtypes.ServiceTierTypeDefault) }), nil, "", "default"},
		{"Converse priority allowed", converse("support-llm", func(in *bedrockruntime.ConverseInput) { in.ServiceTier = tier(brtypes.ServiceTierTypePriority) }), nil, "", "priority"},
		{"Converse priority refused", converse("nova", func(in *bedrockruntime.ConverseInput) { in.ServiceTier = tier(brtypes.ServiceTierTypePriority) }), nil, "AccessDeniedException", ""},
		{"Converse flex unlisted", converse("support-llm", func(in *bedrockruntime.ConverseInput) { in.ServiceTier = tier(brtypes.ServiceTierTypeFlex) }), nil, "AccessDeniedException", ""},
		{"Converse optimized allowed", converse("support-llm", func(in *bedrockruntime.ConverseInput) {
			in.PerformanceConfig = latency(brtypes.PerformanceConfigLatencyOptimized)
		}), nil, "", "optimized"},
		{"Converse priority optimized", converse("support-llm", func(in *bedrockruntime.ConverseInput) {
			in.ServiceTier = tier(brtypes.ServiceTierTypePriority)
			in.PerformanceConfig = latency(brtypes.PerformanceConfigLatencyOptimized)
		}), nil, "", "priority+optimized"},
		{"Converse optimized refused", converse("nova", func(in *bedrockruntime.ConverseInput) {
			in.PerformanceConfig = latency(brtypes.PerformanceConfigLatencyOptimized)
		}), nil, "AccessDeniedException", ""},
		{"Converse standard latency", converse("nova", func(in *bedrockruntime.ConverseInput) {
			in.PerformanceConfig = latency(brtypes.PerformanceConfigLatencyStandard)
		}), nil, "", "default"},
		{"Converse guardrail allowed", converse("support-llm", func(in *bedrockruntime.ConverseInput) {
			in.GuardrailConfig = &brtypes.GuardrailConfiguration{GuardrailIdentifier: aws.String("abc123"), GuardrailVersion: aws.String("1")}
		}), nil, "", "default"},
		{"Converse guardrail by hub ARN", converse("support-llm", func(in *bedrockruntime.ConverseInput) {
			in.GuardrailConfig = &brtypes.GuardrailConfiguration{GuardrailIdentifier: aws.String(hubARN), GuardrailVersion: aws.String("1")}
		}), nil, "", "default"},
		{"Converse guardrail unlisted", converse("support-llm", func(in *bedrockruntime.ConverseInput) {
			in.GuardrailConfig = &brtypes.GuardrailConfiguration{GuardrailIdentifier: aws.String("zzz999"), GuardrailVersion: aws.String("1")}
		}), nil, "AccessDeniedException", ""},
		{"Converse guardrail without a list", converse("nova", func(in *bedrockruntime.ConverseInput) {
			in.GuardrailConfig = &brtypes.GuardrailConfiguration{GuardrailIdentifier: aws.String("abc123"), GuardrailVersion: aws.String("1")}
		}), nil, "AccessDeniedException", ""},
		{"Converse tier header and body disagree", converse("support-llm", func(in *bedrockruntime.ConverseInput) { in.ServiceTier = tier(brtypes.ServiceTierTypeDefault) }),
			[]string{bedrock.HeaderServiceTier, "priority"}, "ValidationException", ""},
		{"Converse priority header refused", converse("nova", func(*bedrockruntime.ConverseInput) {}),
			[]string{bedrock.HeaderServiceTier, "priority"}, "AccessDeniedException", ""},
		{"ConverseStream priority allowed", converseStream("support-llm", func(in *bedrockruntime.ConverseStreamInput) { in.ServiceTier = tier(brtypes.ServiceTierTypePriority) }), nil, "", "priority"},
		{"ConverseStream flex refused", converseStream("nova", func(in *bedrockruntime.ConverseStreamInput) { in.ServiceTier = tier(brtypes.ServiceTierTypeFlex) }), nil, "AccessDeniedException", ""},
		{"ConverseStream guardrail unlisted", converseStream("support-llm", func(in *bedrockruntime.ConverseStreamInput) {
			in.GuardrailConfig = &brtypes.GuardrailStreamConfiguration{GuardrailIdentifier: aws.String("zzz999"), GuardrailVersion: aws.String("1")}
		}), nil, "AccessDeniedException", ""},
		{"InvokeModel priority allowed", invoke("support-llm", anthropic, func(in *bedrockruntime.InvokeModelInput) { in.ServiceTier = brtypes.ServiceTierTypePriority }), nil, "", "priority"},
		{"InvokeModel priority refused", invoke("nova", nova, func(in *bedrockruntime.InvokeModelInput) { in.ServiceTier = brtypes.ServiceTierTypePriority }), nil, "AccessDeniedException", ""},
		{"InvokeModel reserved refused", invoke("support-llm", anthropic, func(in *bedrockruntime.InvokeModelInput) { in.ServiceTier = brtypes.ServiceTierTypeReserved }), nil, "AccessDeniedException", ""},
		{"InvokeModel optimized refused", invoke("nova", nova, func(in *bedrockruntime.InvokeModelInput) {
			in.PerformanceConfigLatency = brtypes.PerformanceConfigLatencyOptimized
		}), nil, "AccessDeniedException", ""},
		{"InvokeModel guardrail allowed", invoke("support-llm", anthropic, func(in *bedrockruntime.InvokeModelInput) {
			in.GuardrailIdentifier, in.GuardrailVersion = aws.String("abc123"), aws.String("1")
		}), nil, "", "default"},
		{"InvokeModel guardrail refused", invoke("nova", nova, func(in *bedrockruntime.InvokeModelInput) {
			in.GuardrailIdentifier, in.GuardrailVersion = aws.String("abc123"), aws.String("1")
		}), nil, "AccessDeniedException", ""},
		{"InvokeModel unknown tier", invoke("support-llm", anthropic, func(*bedrockruntime.InvokeModelInput) {}),
			[]string{bedrock.HeaderServiceTier, "platinum"}, "ValidationException", ""},
		{"InvokeModelWithResponseStream priority allowed", invokeStream("support-llm", anthropic, func(in *bedrockruntime.InvokeModelWithResponseStreamInput) {
			in.ServiceTier = brtypes.ServiceTierTypePriority
		}), nil, "", "priority"},
		{"InvokeModelWithResponseStream flex refused", invokeStream("nova", nova, func(in *bedrockruntime.InvokeModelWithResponseStreamInput) {
			in.ServiceTier = brtypes.ServiceTierTypeFlex
		}), nil, "AccessDeniedException", ""},
		{"ApplyGuardrail allowed", applyGuardrail("abc123"), nil, "", ""},
		{"ApplyGuardrail by hub ARN", applyGuardrail(hubARN), nil, "", ""},
		{"ApplyGuardrail unlisted", applyGuardrail("zzz999"), nil, "AccessDeniedException", ""},
		{"ApplyGuardrail another account's ARN", applyGuardrail("arn:aws:bedrock:us-east-1:999999999999:guardrail/abc123"), nil, "AccessDeniedException", ""},
		{"ApplyGuardrail header names another", applyGuardrail("abc123"), []string{bedrock.HeaderGuardrailID, "zzz999"}, "AccessDeniedException", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Sequential: each case reads the simulator's and the quota's last record.
			h.sim.Reset()
			before := len(h.quota.settlements())
			err := tc.call(h.client(t, devAKID, devSecret, sdktest.WithHeaders(tc.headers...)))
			if tc.wantErr != "" {
				if apiErrorCode(err) != tc.wantErr {
					t.Fatalf("got %v, want %s", err, tc.wantErr)
				}
				if tc.wantErr == "AccessDeniedException" {
					var ae smithy.APIError
					errors.As(err, &ae)
					if ae.ErrorMessage() != deniedMessage {
						t.Fatalf("denial message %q differs from every other denial's", ae.ErrorMessage())
					}
				}
				if n := len(h.sim.Requests()); n != 0 {
					t.Fatalf("a refused call reached the upstream (%d requests)", n)
				}
				if after := h.quota.settlements(); len(after) != before {
					t.Fatalf("a refused call was reserved: %+v", after[before:])
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.wantTier == "" {
				return
			}
			after := h.quota.settlements()
			if len(after) != before+1 || after[before].tier != tc.wantTier {
				t.Fatalf("settlements %+v, want one of tier %s", after[before:], tc.wantTier)
			}
		})
	}
}
