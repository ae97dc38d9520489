package bedrock

import (
	"errors"
	"strings"
	"testing"
)

func TestParseModelID(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want ModelID // Raw is filled in from in
		prov string
	}{
		{"anthropic.claude-3-haiku-20240307-v1:0", ModelID{Kind: KindBaseModel, Resource: "anthropic.claude-3-haiku-20240307-v1:0", BaseModel: "anthropic.claude-3-haiku-20240307-v1:0"}, "anthropic"},
		{"anthropic.claude-3-haiku-20240307-v1:0:200k", ModelID{Kind: KindBaseModel, Resource: "anthropic.claude-3-haiku-20240307-v1:0:200k", BaseModel: "anthropic.claude-3-haiku-20240307-v1:0:200k"}, "anthropic"},
		{"amazon.titan-embed-text-v2:0", ModelID{Kind: KindBaseModel, Resource: "amazon.titan-embed-text-v2:0", BaseModel: "amazon.titan-embed-text-v2:0"}, "amazon"},
		{"cohere.embed-english-v3", ModelID{Kind: KindBaseModel, Resource: "cohere.embed-english-v3", BaseModel: "cohere.embed-english-v3"}, "cohere"},
		{"meta.llama3-8b-instruct-v1:0", ModelID{Kind: KindBaseModel, Resource: "meta.llama3-8b-instruct-v1:0", BaseModel: "meta.llama3-8b-instruct-v1:0"}, "meta"},
		{"amazon.nova-lite-v1:0", ModelID{Kind: KindBaseModel, Resource: "amazon.nova-lite-v1:0", BaseModel: "amazon.nova-lite-v1:0"}, "amazon"},
		{"openai.gpt-oss-120b-1:0", ModelID{Kind: KindBaseModel, Resource: "openai.gpt-oss-120b-1:0", BaseModel: "openai.gpt-oss-120b-1:0"}, "openai"},
		{"us.anthropic.claude-3-5-haiku-20241022-v1:0", ModelID{Kind: KindInferenceProfile, Resource: "us.anthropic.claude-3-5-haiku-20241022-v1:0", Geo: "us", BaseModel: "anthropic.claude-3-5-haiku-20241022-v1:0"}, "anthropic"},
		{"us-gov.anthropic.claude-3-haiku-20240307-v1:0", ModelID{Kind: KindInferenceProfile, Resource: "us-gov.anthropic.claude-3-haiku-20240307-v1:0", Geo: "us-gov", BaseModel: "anthropic.claude-3-haiku-20240307-v1:0"}, "anthropic"},
		{"global.amazon.nova-2-lite-v1:0", ModelID{Kind: KindInferenceProfile, Resource: "global.amazon.nova-2-lite-v1:0", Geo: "global", BaseModel: "amazon.nova-2-lite-v1:0"}, "amazon"},
		{"apac.meta.llama3-2-1b-instruct-v1:0", ModelID{Kind: KindInferenceProfile, Resource: "apac.meta.llama3-2-1b-instruct-v1:0", Geo: "apac", BaseModel: "meta.llama3-2-1b-instruct-v1:0"}, "meta"},
		{"deepseek.r1-v1:0", ModelID{Kind: KindBaseModel, Resource: "deepseek.r1-v1:0", BaseModel: "deepseek.r1-v1:0"}, "deepseek"},
		{"arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-haiku-20240307-v1:0",
			ModelID{Kind: KindFoundationModelARN, Partition: "aws", Region: "us-east-1", Resource: "anthropic.claude-3-haiku-20240307-v1:0", BaseModel: "anthropic.claude-3-haiku-20240307-v1:0"}, "anthropic"},
		{"arn:aws-us-gov:bedrock:us-gov-west-1::foundation-model/customer-support-llm",
			ModelID{Kind: KindFoundationModelARN, Partition: "aws-us-gov", Region: "us-gov-west-1", Resource: "customer-support-llm", BaseModel: "customer-support-llm"}, ""},
		{"arn:aws:bedrock:eu-west-1:123456789012:inference-profile/eu.anthropic.claude-3-5-sonnet-20240620-v1:0",
			ModelID{Kind: KindInferenceProfileARN, Partition: "aws", Region: "eu-west-1", Account: "123456789012", Resource: "eu.anthropic.claude-3-5-sonnet-20240620-v1:0", Geo: "eu", BaseModel: "anthropic.claude-3-5-sonnet-20240620-v1:0"}, "anthropic"},
		{"arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abcd1234efgh",
			ModelID{Kind: KindApplicationInferenceProfileARN, Partition: "aws", Region: "us-east-1", Account: "123456789012", Resource: "abcd1234efgh"}, ""},
		{"arn:aws:bedrock:us-east-1:123456789012:provisioned-model/a1b2c3d4e5f6",
			ModelID{Kind: KindProvisionedModelARN, Partition: "aws", Region: "us-east-1", Account: "123456789012", Resource: "a1b2c3d4e5f6"}, ""},
		{"arn:aws:bedrock:us-east-1:123456789012:custom-model/amazon.titan-text-express-v1:0:8k/abcdefghij12",
			ModelID{Kind: KindCustomModelARN, Partition: "aws", Region: "us-east-1", Account: "123456789012", Resource: "amazon.titan-text-express-v1:0:8k/abcdefghij12"}, ""},
		{"arn:aws:bedrock:us-west-2:123456789012:custom-model-deployment/x1y2z3",
			ModelID{Kind: KindCustomModelARN, Partition: "aws", Region: "us-west-2", Account: "123456789012", Resource: "x1y2z3"}, ""},
		{"arn:aws-cn:bedrock:cn-north-1:123456789012:imported-model/im0abc",
			ModelID{Kind: KindImportedModelARN, Partition: "aws-cn", Region: "cn-north-1", Account: "123456789012", Resource: "im0abc"}, ""},
		{"arn:aws:sagemaker:us-east-1:123456789012:endpoint/my-Endpoint-1",
			ModelID{Kind: KindMarketplaceEndpointARN, Partition: "aws", Region: "us-east-1", Account: "123456789012", Resource: "my-Endpoint-1"}, ""},
		{"arn:aws-eusc:bedrock:eusc-de-east-1::foundation-model/amazon.nova-pro-v1:0",
			ModelID{Kind: KindFoundationModelARN, Partition: "aws-eusc", Region: "eusc-de-east-1", Resource: "amazon.nova-pro-v1:0", BaseModel: "amazon.nova-pro-v1:0"}, "amazon"},
		{"arn:aws-iso-b:bedrock:us-isob-east-1:123456789012:application-inference-profile/p",
			ModelID{Kind: KindApplicationInferenceProfileARN, Partition: "aws-iso-b", Region: "us-isob-east-1", Account: "123456789012", Resource: "p"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got, err := ParseModelID(tt.in)
			if err != nil {
				t.Fatalf("ParseModelID: %v", err)
			}
			want := tt.want
			want.Raw = tt.in
			if got != want {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
			if p := got.Provider(); p != tt.prov {
				t.Errorf("Provider() = %q, want %q", p, tt.prov)
			}
			if got.Kind.IsARN() != strings.HasPrefix(tt.in, "arn:") {
				t.Errorf("IsARN() = %v", got.Kind.IsARN())
			}
		})
	}
}

func TestParseModelIDRejects(t *testing.T) {
	t.Parallel()
	tests := []string{
		"",
		strings.Repeat("a", 2040) + ".model-v1", // too long
		"customer-support-llm",                  // no provider label
		"Anthropic.claude",                      // uppercase
		"anthropic.",                            // empty name
		".claude",                               // empty provider
		"anthropic.claude v1",                   // space
		"anthropic.claude-v1:",                  // trailing colon
		"us.claude",                             // geo then name without provider: "us" as provider? see below
		"arn:aws:bedrock:us-east-1::foundation-model",                                 // no resource name
		"arn:aws:bedrock:us-east-1::foundation-model/",                                // empty resource name
		"arn:aws:bedrock:us-east-1:123456789012:foundation-model/anthropic.claude-v2", // account on a foundation model
		"arn:aws:bedrock:us-east-1::foundation-model/Anthropic.Claude",                // uppercase
		"arn:aws:bedrock:us-east-1::application-inference-profile/abc",                // missing account
		"arn:aws:bedrock:us-east-1:12345678901:application-inference-profile/abc",     // short account
		"arn:aws:bedrock:us-east-1:12345678901x:application-inference-profile/abc",    // non-digit account
		"arn:aws:bedrock:us-east-1:123456789012:knowledge-base/abc",                   // not a model type
		"arn:aws:s3:us-east-1:123456789012:application-inference-profile/abc",         // wrong service
		"arn:aws:sagemaker:us-east-1:123456789012:model/abc",                          // sagemaker non-endpoint
		"arn:aws:sagemaker:us-east-1:123456789012:endpoint/bad_name",                  // endpoint charset
		"arn:aws:sagemaker:us-east-1:123456789012:endpoint/-bad",                      // endpoint leading dash
		"arn:azure:bedrock:us-east-1::foundation-model/anthropic.claude-v2",           // partition
		"arn:aws:bedrock:US-EAST-1::foundation-model/anthropic.claude-v2",             // region case
		"arn:aws:bedrock:useast1::foundation-model/anthropic.claude-v2",               // region shape
		"arn:aws:bedrock:us-east-::foundation-model/anthropic.claude-v2",              // region shape
		"arn:aws:bedrock:us--east-1::foundation-model/anthropic.claude-v2",            // region shape
		"arn:aws:bedrock::foundation-model/anthropic.claude-v2",                       // too few fields
		"arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a b",    // space
		"arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a\x00",  // control
		"arn:aws:bedrock:us-east-1:123456789012:provisioned-model/" + "\u00e9",        // non-ASCII
		"arn:aws:bedrock:us-east-1:123456789012:/abc",                                 // empty type
		"arn:aws:bedrock:us-east-1:123456789012:application-inference-profile",        // no slash
	}
	for _, in := range tests {
		m, err := ParseModelID(in)
		if in == "us.claude" {
			// "us" is not a provider, but a permissive base-model parser accepts it
			// as one; it must not be taken for a geo profile.
			if err != nil || m.Kind != KindBaseModel {
				t.Errorf("ParseModelID(%q) = %+v, %v", in, m, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("ParseModelID(%q) = %+v, want error", in, m)
			continue
		}
		var be *Error
		if !errors.As(err, &be) || be.Type != "ValidationException" || be.Status != 400 {
			t.Errorf("ParseModelID(%q) error %#v, want ValidationException", in, err)
		}
		if len(in) > 0 && strings.Contains(be.Message, in) {
			t.Errorf("error message echoes the input: %q", be.Message)
		}
	}
}

func TestModelKindString(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for k := KindInvalid; k < kindCount; k++ {
		s := k.String()
		if s == "" || seen[s] {
			t.Errorf("kind %d has name %q (empty or duplicate)", k, s)
		}
		seen[s] = true
	}
	if got := ModelKind(200).String(); got != "invalid" {
		t.Errorf("out of range kind = %q", got)
	}
}

func TestIsEntitlementName(t *testing.T) {
	t.Parallel()
	tests := map[string]bool{
		"customer-support-llm":  true,
		"a":                     true,
		"0":                     true,
		"a-b-c":                 true,
		strings.Repeat("a", 63): true,
		strings.Repeat("a", 64): false,
		"":                      false,
		"-a":                    false,
		"a-":                    false,
		"A":                     false,
		"a_b":                   false,
		"a.b":                   false,
		"a b":                   false,
		"anthropic.claude-v2:0": false,
	}
	for in, want := range tests {
		if got := IsEntitlementName(in); got != want {
			t.Errorf("IsEntitlementName(%q) = %v, want %v", in, got, want)
		}
	}
}

func FuzzParseModelID(f *testing.F) {
	for _, s := range []string{
		"anthropic.claude-3-haiku-20240307-v1:0", "us.anthropic.claude-3-5-haiku-20241022-v1:0",
		"arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-lite-v1:0",
		"arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.meta.llama3-8b-instruct-v1:0",
		"arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abcd1234efgh",
		"arn:aws:sagemaker:us-east-1:123456789012:endpoint/e", "arn:::::", "arn:aws:bedrock:a-1::x/",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseModelID(s)
		if err != nil {
			var be *Error
			if !errors.As(err, &be) || be.Type != "ValidationException" {
				t.Fatalf("error %#v is not a ValidationException", err)
			}
			return
		}
		if m.Raw != s {
			t.Fatalf("Raw = %q, want %q", m.Raw, s)
		}
		if m.Kind == KindInvalid || m.Resource == "" {
			t.Fatalf("accepted %q with kind %v resource %q", s, m.Kind, m.Resource)
		}
		if m.BaseModel != "" && !strings.Contains(s, m.BaseModel) {
			t.Fatalf("BaseModel %q not in %q", m.BaseModel, s)
		}
		again, err := ParseModelID(m.Raw)
		if err != nil || again != m {
			t.Fatalf("reparse of %q: %+v, %v", s, again, err)
		}
		_ = m.Provider()
	})
}
