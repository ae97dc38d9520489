package sim

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	bedrockcp "github.com/aws/aws-sdk-go-v2/service/bedrock"
	cptypes "github.com/aws/aws-sdk-go-v2/service/bedrock/types"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	rttypes "github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"
	"github.com/aws/smithy-go"

	"github.com/bedrock-gateway/gateway/internal/authn"
)

const (
	cpAKID   = "AKIDCONTROLPLANE0001"
	cpSecret = "control-plane-secret"
)

// newControlPlane serves a simulator that verifies signatures with the hub
// key (as gateway sim does) and returns it with an official Bedrock
// control-plane client and a runtime client signed with that key.
func newControlPlane(t *testing.T) (*Simulator, *bedrockcp.Client, *bedrockruntime.Client) {
	t.Helper()
	lookup, err := authn.NewStaticLookup(&authn.Credential{ID: cpAKID, Account: HubAccount, Kind: authn.KindSigV4, Secret: cpSecret})
	if err != nil {
		t.Fatal(err)
	}
	v := authn.NewVerifier(authn.Options{})
	s, srv := newServer(t, Options{Verify: func(r *http.Request, body []byte) error { return authn.VerifyStatic(v, r, body, lookup) }})
	creds := credentials.NewStaticCredentialsProvider(cpAKID, cpSecret, "")
	cp := bedrockcp.New(bedrockcp.Options{
		BaseEndpoint: aws.String(srv.URL), Region: "us-east-1", Credentials: creds,
		Retryer: aws.NopRetryer{}, HTTPClient: SDKHTTPClient(srv.Client()),
	})
	rt := bedrockruntime.New(bedrockruntime.Options{
		BaseEndpoint: aws.String(srv.URL), Region: "us-east-1", Credentials: creds,
		Retryer: aws.NopRetryer{}, HTTPClient: SDKHTTPClient(srv.Client()),
	})
	return s, cp, rt
}

func errCode(err error) string {
	if apiErr, ok := errors.AsType[smithy.APIError](err); ok {
		return apiErr.ErrorCode()
	}
	return ""
}

func TestControlPlaneInferenceProfileLifecycle(t *testing.T) {
	t.Parallel()
	s, cp, rt := newControlPlane(t)
	ctx := t.Context()
	const model = "anthropic.claude-3-5-haiku-20241022-v1:0"
	created, err := cp.CreateInferenceProfile(ctx, &bedrockcp.CreateInferenceProfileInput{
		InferenceProfileName: aws.String("bgw-support-development"),
		Description:          aws.String("team development"),
		ModelSource:          &cptypes.InferenceProfileModelSourceMemberCopyFrom{Value: "arn:aws:bedrock:us-east-1::foundation-model/" + model},
		Tags:                 []cptypes.Tag{{Key: aws.String("bedrock-gateway:team"), Value: aws.String("development")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	arn := aws.ToString(created.InferenceProfileArn)
	if !strings.HasPrefix(arn, "arn:aws:bedrock:us-east-1:"+HubAccount+":application-inference-profile/") || created.Status != cptypes.InferenceProfileStatusActive {
		t.Fatalf("created %q %q", arn, created.Status)
	}

	// Get by ARN and by ID.
	got, err := cp.GetInferenceProfile(ctx, &bedrockcp.GetInferenceProfileInput{InferenceProfileIdentifier: aws.String(arn)})
	if err != nil {
		t.Fatal(err)
	}
	id := aws.ToString(got.InferenceProfileId)
	if aws.ToString(got.InferenceProfileArn) != arn || got.Type != cptypes.InferenceProfileTypeApplication ||
		len(got.Models) != 1 || !strings.HasSuffix(aws.ToString(got.Models[0].ModelArn), "/"+model) || got.CreatedAt == nil {
		t.Errorf("get by ARN: %+v", got)
	}
	if byID, err := cp.GetInferenceProfile(ctx, &bedrockcp.GetInferenceProfileInput{InferenceProfileIdentifier: aws.String(id)}); err != nil || aws.ToString(byID.InferenceProfileArn) != arn {
		t.Errorf("get by ID: %v %v", byID, err)
	}

	// A duplicate name is a conflict.
	_, err = cp.CreateInferenceProfile(ctx, &bedrockcp.CreateInferenceProfileInput{
		InferenceProfileName: aws.String("bgw-support-development"),
		ModelSource:          &cptypes.InferenceProfileModelSourceMemberCopyFrom{Value: "arn:aws:bedrock:us-east-1::foundation-model/" + model},
	})
	if errCode(err) != "ConflictException" {
		t.Errorf("duplicate name: %v", err)
	}

	// Tags: add, list, remove.
	if _, err := cp.TagResource(ctx, &bedrockcp.TagResourceInput{ResourceARN: aws.String(arn),
		Tags: []cptypes.Tag{{Key: aws.String("bedrock-gateway:entitlement"), Value: aws.String("support")}}}); err != nil {
		t.Fatal(err)
	}
	tags, err := cp.ListTagsForResource(ctx, &bedrockcp.ListTagsForResourceInput{ResourceARN: aws.String(arn)})
	if err != nil || len(tags.Tags) != 2 || aws.ToString(tags.Tags[0].Key) != "bedrock-gateway:entitlement" || aws.ToString(tags.Tags[1].Value) != "development" {
		t.Errorf("tags: %+v %v", tags, err)
	}
	if _, err := cp.UntagResource(ctx, &bedrockcp.UntagResourceInput{ResourceARN: aws.String(arn), TagKeys: []string{"bedrock-gateway:team"}}); err != nil {
		t.Fatal(err)
	}
	if tags, _ := cp.ListTagsForResource(ctx, &bedrockcp.ListTagsForResourceInput{ResourceARN: aws.String(arn)}); len(tags.Tags) != 1 {
		t.Errorf("after untag: %+v", tags.Tags)
	}

	// Invocable through the runtime by ARN (the SDK escapes it) and by ID,
	// answering as the model it copies; usage is counted per ID as used.
	for _, modelID := range []string{arn, id, arn} {
		out, err := rt.Converse(ctx, &bedrockruntime.ConverseInput{ModelId: aws.String(modelID), Messages: []rttypes.Message{userMessage("one two three")}})
		if err != nil {
			t.Fatalf("converse %s: %v", modelID, err)
		}
		if aws.ToInt32(out.Usage.InputTokens) != 3 {
			t.Errorf("usage %+v", out.Usage)
		}
	}
	usage := s.UsageByModelID()
	if u := usage[arn]; u.Invocations != 2 || u.InputTokens != 6 || u.OutputTokens != 2*DefaultOutputTokens {
		t.Errorf("usage of the ARN: %+v", u)
	}
	if u := usage[id]; u.Invocations != 1 || u.InputTokens != 3 {
		t.Errorf("usage of the ID: %+v", u)
	}

	// Delete; then it is gone everywhere.
	if _, err := cp.DeleteInferenceProfile(ctx, &bedrockcp.DeleteInferenceProfileInput{InferenceProfileIdentifier: aws.String(arn)}); err != nil {
		t.Fatal(err)
	}
	if _, err := cp.GetInferenceProfile(ctx, &bedrockcp.GetInferenceProfileInput{InferenceProfileIdentifier: aws.String(arn)}); errCode(err) != "ResourceNotFoundException" {
		t.Errorf("get after delete: %v", err)
	}
	if _, err := cp.ListTagsForResource(ctx, &bedrockcp.ListTagsForResourceInput{ResourceARN: aws.String(arn)}); errCode(err) != "ResourceNotFoundException" {
		t.Errorf("tags after delete: %v", err)
	}
}

func TestControlPlaneListPaginates(t *testing.T) {
	t.Parallel()
	s, cp, _ := newControlPlane(t)
	ctx := t.Context()
	const n = 2*DefaultProfilePageSize + 3
	want := map[string]bool{}
	for i := range n {
		out, err := cp.CreateInferenceProfile(ctx, &bedrockcp.CreateInferenceProfileInput{
			InferenceProfileName: aws.String("profile-" + string(rune('a'+i))),
			ModelSource:          &cptypes.InferenceProfileModelSourceMemberCopyFrom{Value: "arn:aws:bedrock:us-east-1:" + HubAccount + ":inference-profile/us.amazon.nova-lite-v1:0"},
		})
		if err != nil {
			t.Fatal(err)
		}
		want[aws.ToString(out.InferenceProfileArn)] = true
	}
	pages := 0
	got := map[string]bool{}
	p := bedrockcp.NewListInferenceProfilesPaginator(cp, &bedrockcp.ListInferenceProfilesInput{TypeEquals: cptypes.InferenceProfileTypeApplication})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, sum := range out.InferenceProfileSummaries {
			got[aws.ToString(sum.InferenceProfileArn)] = true
			if m := aws.ToString(sum.Models[0].ModelArn); !strings.HasSuffix(m, "foundation-model/amazon.nova-lite-v1:0") {
				t.Errorf("a copy of a system profile answers as its base model, got %s", m)
			}
		}
	}
	if pages != 3 || len(got) != n {
		t.Errorf("%d pages, %d profiles; want 3 and %d", pages, len(got), n)
	}
	for a := range want {
		if !got[a] {
			t.Errorf("missing %s", a)
		}
	}
	sys, err := cp.ListInferenceProfiles(ctx, &bedrockcp.ListInferenceProfilesInput{TypeEquals: cptypes.InferenceProfileTypeSystemDefined})
	if err != nil || len(sys.InferenceProfileSummaries) != 0 {
		t.Errorf("system-defined: %+v %v", sys, err)
	}
	if len(s.Profiles()) != n {
		t.Errorf("Profiles(): %d", len(s.Profiles()))
	}
}

func TestControlPlaneRefusals(t *testing.T) {
	t.Parallel()
	_, cp, _ := newControlPlane(t)
	ctx := t.Context()
	src := &cptypes.InferenceProfileModelSourceMemberCopyFrom{Value: "arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-lite-v1:0"}
	tests := []struct {
		name string
		in   *bedrockcp.CreateInferenceProfileInput
		code string
	}{
		{"bad name", &bedrockcp.CreateInferenceProfileInput{InferenceProfileName: aws.String("a  b"), ModelSource: src}, "ValidationException"},
		{"bad source", &bedrockcp.CreateInferenceProfileInput{InferenceProfileName: aws.String("ok"),
			ModelSource: &cptypes.InferenceProfileModelSourceMemberCopyFrom{Value: "amazon.nova-lite-v1:0"}}, "ValidationException"},
		{"bad tag", &bedrockcp.CreateInferenceProfileInput{InferenceProfileName: aws.String("ok"), ModelSource: src,
			Tags: []cptypes.Tag{{Key: aws.String("a&b"), Value: aws.String("x")}}}, "ValidationException"},
	}
	for _, tc := range tests {
		if _, err := cp.CreateInferenceProfile(ctx, tc.in); errCode(err) != tc.code {
			t.Errorf("%s: %v, want %s", tc.name, err, tc.code)
		}
	}
	if _, err := cp.GetInferenceProfile(ctx, &bedrockcp.GetInferenceProfileInput{InferenceProfileIdentifier: aws.String("nosuchprofile")}); errCode(err) != "ResourceNotFoundException" {
		t.Errorf("unknown: %v", err)
	}

	// A wrong secret is refused like the runtime refuses it.
	bad := bedrockcp.New(bedrockcp.Options{
		BaseEndpoint: cp.Options().BaseEndpoint, Region: "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider(cpAKID, "wrong", ""),
		Retryer:     aws.NopRetryer{}, HTTPClient: cp.Options().HTTPClient,
	})
	if _, err := bad.ListInferenceProfiles(ctx, &bedrockcp.ListInferenceProfilesInput{}); errCode(err) != "InvalidSignatureException" {
		t.Errorf("bad signature: %v", err)
	}
}
