package bedrock

import (
	"errors"
	"net/http"
	"slices"
	"testing"
)

func TestHeaderOptions(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		h       http.Header
		want    RequestOptions
		wantErr bool
	}{
		{"none", http.Header{}, RequestOptions{}, false},
		{"all", http.Header{HeaderServiceTier: {"priority"}, HeaderLatency: {"optimized"}, HeaderGuardrailID: {"abc123"}, HeaderGuardrailVersion: {"1"}},
			RequestOptions{ServiceTier: "priority", Latency: "optimized", Guardrails: []string{"abc123"}}, false},
		{"guardrail ARN", http.Header{HeaderGuardrailID: {"arn:aws:bedrock:us-east-1:111111111111:guardrail/abc123"}},
			RequestOptions{Guardrails: []string{"arn:aws:bedrock:us-east-1:111111111111:guardrail/abc123"}}, false},
		{"unknown tier", http.Header{HeaderServiceTier: {"platinum"}}, RequestOptions{}, true},
		{"tier case matters", http.Header{HeaderServiceTier: {"Priority"}}, RequestOptions{}, true},
		{"repeated tier", http.Header{HeaderServiceTier: {"default", "priority"}}, RequestOptions{}, true},
		{"unknown latency", http.Header{HeaderLatency: {"fast"}}, RequestOptions{}, true},
		{"malformed guardrail", http.Header{HeaderGuardrailID: {"gr-abc"}}, RequestOptions{}, true},
		{"repeated guardrail", http.Header{HeaderGuardrailID: {"abc", "def"}}, RequestOptions{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := HeaderOptions(tc.h)
			checkOptions(t, got, err, tc.want, tc.wantErr)
		})
	}
}

func checkOptions(t *testing.T, got RequestOptions, err error, want RequestOptions, wantErr bool) {
	t.Helper()
	if wantErr {
		var be *Error
		if !errors.As(err, &be) || be.Type != "ValidationException" {
			t.Fatalf("err = %v, want a ValidationException", err)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if got.ServiceTier != want.ServiceTier || got.Latency != want.Latency || !slices.Equal(got.Guardrails, want.Guardrails) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
}

func TestInspectRequestOptions(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		op      Operation
		body    string
		want    RequestOptions
		wantErr bool
	}{
		{"none", OpConverse, `{"messages":[]}`, RequestOptions{}, false},
		{"all", OpConverseStream, `{"serviceTier":{"type":"flex"},"performanceConfig":{"latency":"standard"},"guardrailConfig":{"guardrailIdentifier":"abc123","guardrailVersion":"DRAFT","streamProcessingMode":"async"}}`,
			RequestOptions{ServiceTier: "flex", Latency: "standard", Guardrails: []string{"abc123"}}, false},
		{"nulls", OpConverse, `{"serviceTier":null,"performanceConfig":{"latency":null},"guardrailConfig":null}`, RequestOptions{}, false},
		{"escaped value", OpConverse, `{"serviceTier":{"type":"pri\u006frity"}}`, RequestOptions{ServiceTier: "priority"}, false},
		{"the last member wins, as in a JSON decoder", OpConverse, `{"serviceTier":{"type":"default"},"serviceTier":{"type":"priority"}}`, RequestOptions{ServiceTier: "priority"}, false},
		{"InvokeModel bodies are the model's own", OpInvokeModel, `{"serviceTier":{"type":"priority"},"max_tokens":5}`, RequestOptions{}, false},
		{"unknown tier", OpConverse, `{"serviceTier":{"type":"gold"}}`, RequestOptions{}, true},
		{"tier not an object", OpConverse, `{"serviceTier":"priority"}`, RequestOptions{}, true},
		{"tier type not a string", OpConverse, `{"serviceTier":{"type":1}}`, RequestOptions{}, true},
		{"unknown latency", OpConverse, `{"performanceConfig":{"latency":"turbo"}}`, RequestOptions{}, true},
		{"malformed guardrail", OpConverse, `{"guardrailConfig":{"guardrailIdentifier":"ABC"}}`, RequestOptions{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, got, err := InspectRequest(tc.op, "anthropic.claude-3-5-haiku-20241022-v1:0", []byte(tc.body), EstimateOptions{})
			checkOptions(t, got, err, tc.want, tc.wantErr)
		})
	}
}

func TestRequestOptionsMerge(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		a, b    RequestOptions
		want    RequestOptions
		wantErr bool
	}{
		{"disjoint", RequestOptions{ServiceTier: "priority"}, RequestOptions{Latency: "optimized", Guardrails: []string{"g1"}},
			RequestOptions{ServiceTier: "priority", Latency: "optimized", Guardrails: []string{"g1"}}, false},
		{"same tier twice", RequestOptions{ServiceTier: "flex"}, RequestOptions{ServiceTier: "flex"}, RequestOptions{ServiceTier: "flex"}, false},
		{"guardrails add up", RequestOptions{Guardrails: []string{"g1"}}, RequestOptions{Guardrails: []string{"g2"}}, RequestOptions{Guardrails: []string{"g1", "g2"}}, false},
		{"two tiers", RequestOptions{ServiceTier: "default"}, RequestOptions{ServiceTier: "priority"}, RequestOptions{}, true},
		{"two latencies", RequestOptions{Latency: "standard"}, RequestOptions{Latency: "optimized"}, RequestOptions{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := tc.a
			err := got.Merge(tc.b)
			checkOptions(t, got, err, tc.want, tc.wantErr)
		})
	}
}

func TestPricingTier(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		o    RequestOptions
		want string
	}{
		{RequestOptions{}, "default"},
		{RequestOptions{ServiceTier: "default", Latency: "standard"}, "default"},
		{RequestOptions{ServiceTier: "priority"}, "priority"},
		{RequestOptions{ServiceTier: "flex"}, "flex"},
		{RequestOptions{Latency: "optimized"}, "optimized"},
		{RequestOptions{ServiceTier: "default", Latency: "optimized"}, "optimized"},
		{RequestOptions{ServiceTier: "priority", Latency: "optimized"}, "priority+optimized"},
	} {
		if got := tc.o.PricingTier(); got != tc.want {
			t.Errorf("%+v: got %q, want %q", tc.o, got, tc.want)
		}
		if !IsPricingTier(tc.o.PricingTier()) {
			t.Errorf("%q is not a pricing tier", tc.o.PricingTier())
		}
	}
	for _, s := range []string{"", "gold", "default+optimized", "optimized+optimized", "+optimized", "Priority"} {
		if IsPricingTier(s) {
			t.Errorf("IsPricingTier(%q) = true", s)
		}
	}
}

func TestParseGuardrail(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want GuardrailRef
		ok   bool
	}{
		{"abc123", GuardrailRef{ID: "abc123"}, true},
		{"arn:aws:bedrock:us-east-1:111111111111:guardrail/abc123",
			GuardrailRef{ID: "abc123", ARN: "arn:aws:bedrock:us-east-1:111111111111:guardrail/abc123", Region: "us-east-1", Account: "111111111111"}, true},
		{"arn:aws-us-gov:bedrock:us-gov-west-1:111111111111:guardrail/x1",
			GuardrailRef{ID: "x1", ARN: "arn:aws-us-gov:bedrock:us-gov-west-1:111111111111:guardrail/x1", Region: "us-gov-west-1", Account: "111111111111"}, true},
		{"", GuardrailRef{}, false},
		{"ABC", GuardrailRef{}, false},
		{"gr-abc", GuardrailRef{}, false},
		{"arn:aws:bedrock:us-east-1:111111111111:guardrail/", GuardrailRef{}, false},
		{"arn:aws:bedrock:us-east-1:1111:guardrail/abc", GuardrailRef{}, false},
		{"arn:aws:s3:us-east-1:111111111111:guardrail/abc", GuardrailRef{}, false},
		{"arn:aws:bedrock:us-east-1:111111111111:foundation-model/abc", GuardrailRef{}, false},
		{"arn:aws:bedrock:us-east-1:111111111111:guardrail/abc/1", GuardrailRef{}, false},
	} {
		got, ok := ParseGuardrail(tc.in)
		if ok != tc.ok || got != tc.want {
			t.Errorf("ParseGuardrail(%q) = %+v, %v; want %+v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}
