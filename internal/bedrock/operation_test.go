package bedrock

import (
	"errors"
	"net/url"
	"strings"
	"testing"
)

func TestOperationNames(t *testing.T) {
	t.Parallel()
	for op := OpInvokeModel; op < opCount; op++ {
		got, ok := ParseOperation(op.String())
		if !ok || got != op {
			t.Errorf("ParseOperation(%q) = %v, %v", op.String(), got, ok)
		}
	}
	if _, ok := ParseOperation("Unknown"); ok {
		t.Error(`ParseOperation("Unknown") ok`)
	}
	if Operation(200).String() != "Unknown" {
		t.Error("out of range operation has a name")
	}
	for _, op := range RuntimeOperations() {
		if op == OpListFoundationModels || op == OpGetFoundationModel {
			t.Errorf("%v listed as a runtime operation", op)
		}
	}
}

func TestParseRoute(t *testing.T) {
	t.Parallel()
	tests := []struct {
		method, path string
		want         Route
	}{
		{"POST", "/model/anthropic.claude-3-haiku-20240307-v1%3A0/invoke", Route{Op: OpInvokeModel, ModelID: "anthropic.claude-3-haiku-20240307-v1:0"}},
		{"POST", "/model/us.anthropic.claude-3-5-haiku-20241022-v1%3A0/invoke-with-response-stream", Route{Op: OpInvokeModelWithResponseStream, ModelID: "us.anthropic.claude-3-5-haiku-20241022-v1:0"}},
		{"POST", "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Aapplication-inference-profile%2Fabcd1234efgh/converse", Route{Op: OpConverse, ModelID: "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abcd1234efgh"}},
		{"POST", "/model/my-llm/converse-stream", Route{Op: OpConverseStream, ModelID: "my-llm"}},
		{"POST", "/model/my-llm/count-tokens", Route{Op: OpCountTokens, ModelID: "my-llm"}},
		{"POST", "/model/my-llm/invoke-with-bidirectional-stream", Route{Op: OpInvokeModelWithBidirectionalStream, ModelID: "my-llm"}},
		{"POST", "/model/a%2525b/invoke", Route{Op: OpInvokeModel, ModelID: "a%25b"}}, // decoded exactly once
		{"POST", "/async-invoke", Route{Op: OpStartAsyncInvoke}},
		{"GET", "/async-invoke", Route{Op: OpListAsyncInvokes}},
		{"GET", "/async-invoke/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Aasync-invoke%2Fabc", Route{Op: OpGetAsyncInvoke, InvocationARN: "arn:aws:bedrock:us-east-1:123456789012:async-invoke/abc"}},
		{"POST", "/guardrail/gr1/version/DRAFT/apply", Route{Op: OpApplyGuardrail, GuardrailID: "gr1", GuardrailVersion: "DRAFT"}},
		{"POST", "/guardrail/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Aguardrail%2Fgr1/version/1/apply", Route{Op: OpApplyGuardrail, GuardrailID: "arn:aws:bedrock:us-east-1:123456789012:guardrail/gr1", GuardrailVersion: "1"}},
		{"GET", "/foundation-models", Route{Op: OpListFoundationModels}},
		{"GET", "/foundation-models/my-llm", Route{Op: OpGetFoundationModel, ModelID: "my-llm"}},
	}
	for _, tt := range tests {
		got, err := ParseRoute(tt.method, tt.path)
		if err != nil || got != tt.want {
			t.Errorf("ParseRoute(%s %s) = %+v, %v; want %+v", tt.method, tt.path, got, err, tt.want)
		}
	}
}

func TestParseRouteRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		method, path, errType string
	}{
		{"GET", "/model/x/invoke", "UnknownOperationException"},
		{"POST", "/model/x/invoke/extra", "UnknownOperationException"},
		{"POST", "/model//invoke", "UnknownOperationException"},
		{"POST", "/model/x", "UnknownOperationException"},
		{"POST", "/model/x/chat", "UnknownOperationException"},
		{"POST", "/model/%zz/invoke", "ValidationException"},
		{"DELETE", "/async-invoke", "UnknownOperationException"},
		{"POST", "/async-invoke/abc", "UnknownOperationException"},
		{"GET", "/async-invoke/", "UnknownOperationException"},
		{"GET", "/async-invoke/a/b", "UnknownOperationException"},
		{"GET", "/async-invoke/%zz", "ValidationException"},
		{"POST", "/guardrail/g/version/1", "UnknownOperationException"},
		{"POST", "/guardrail//version/1/apply", "UnknownOperationException"},
		{"GET", "/guardrail/g/version/1/apply", "UnknownOperationException"},
		{"POST", "/guardrail/%zz/version/1/apply", "ValidationException"},
		{"POST", "/foundation-models", "UnknownOperationException"},
		{"GET", "/foundation-models/", "UnknownOperationException"},
		{"GET", "/", "UnknownOperationException"},
		{"GET", "", "UnknownOperationException"},
	}
	for _, tt := range tests {
		_, err := ParseRoute(tt.method, tt.path)
		var be *Error
		if !errors.As(err, &be) || be.Type != tt.errType {
			t.Errorf("ParseRoute(%s %s) error %v, want %s", tt.method, tt.path, err, tt.errType)
		}
	}
}

func TestEscapeLabelAndModelPath(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"anthropic.claude-3-haiku-20240307-v1:0":                                            "anthropic.claude-3-haiku-20240307-v1%3A0",
		"arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abcd1234efgh": "arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Aapplication-inference-profile%2Fabcd1234efgh",
		"A-Z_a~z.0": "A-Z_a~z.0",
		"a b%é":     "a%20b%25%C3%A9",
	}
	for in, want := range tests {
		if got := EscapeLabel(in); got != want {
			t.Errorf("EscapeLabel(%q) = %q, want %q", in, got, want)
		}
	}
	for _, op := range []Operation{OpInvokeModel, OpInvokeModelWithResponseStream, OpConverse, OpConverseStream, OpCountTokens, OpInvokeModelWithBidirectionalStream} {
		id := "us.anthropic.claude-3-5-haiku-20241022-v1:0"
		r, err := ParseRoute("POST", ModelPath(op, id))
		if err != nil || r.Op != op || r.ModelID != id {
			t.Errorf("%v: ParseRoute(ModelPath) = %+v, %v", op, r, err)
		}
	}
	if ModelPath(OpApplyGuardrail, "x") != "" {
		t.Error("ModelPath of a model-less operation is not empty")
	}
}

func TestOperationPredicates(t *testing.T) {
	t.Parallel()
	for op := OpUnknown; op < opCount; op++ {
		if op.Generates() && !op.HasModel() {
			t.Errorf("%v generates without a model", op)
		}
		if op.Streaming() && !op.Generates() {
			t.Errorf("%v streams without generating", op)
		}
	}
}

func FuzzParseRoute(f *testing.F) {
	for _, p := range []string{
		"/model/anthropic.claude-3-haiku-20240307-v1%3A0/invoke", "/async-invoke/x", "/guardrail/g/version/1/apply",
		"/foundation-models/m", "/model/%2F/converse",
	} {
		f.Add("POST", p)
		f.Add("GET", p)
	}
	f.Fuzz(func(t *testing.T, method, path string) {
		r, err := ParseRoute(method, path)
		if err != nil {
			var be *Error
			if !errors.As(err, &be) {
				t.Fatalf("error %T is not *Error", err)
			}
			return
		}
		if r.Op == OpUnknown {
			t.Fatal("ok with OpUnknown")
		}
		if r.Op.HasModel() && r.ModelID == "" {
			t.Fatalf("%v without a model ID", r.Op)
		}
		// A model route re-encoded the SDK way parses to the same route.
		if r.ModelID != "" && r.Op != OpGetFoundationModel {
			again, err := ParseRoute("POST", ModelPath(r.Op, r.ModelID))
			if err != nil || again != r {
				t.Fatalf("re-encoded %q: %+v, %v", path, again, err)
			}
			if u, err := url.PathUnescape(EscapeLabel(r.ModelID)); err != nil || u != r.ModelID {
				t.Fatalf("EscapeLabel round trip: %q, %v", u, err)
			}
			if strings.ContainsAny(EscapeLabel(r.ModelID), "/: ?#") {
				t.Fatalf("EscapeLabel left a reserved byte: %q", EscapeLabel(r.ModelID))
			}
		}
	})
}

func TestUpstreamQuery(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		op      Operation
		raw     string
		want    string
		wantErr bool
	}{
		{"empty", OpConverse, "", "", false},
		{"presigned credentials dropped", OpConverse, "X-Amz-Credential=GWX%2F20260101%2Fus-east-1%2Fbedrock%2Faws4_request&X-Amz-Security-Token=tok", "", false},
		{"anything on invoke dropped", OpInvokeModel, "foo=bar&maxResults=3", "", false},
		{"list keeps its parameters", OpListAsyncInvokes, "maxResults=5&nextToken=abc%2B%3D&sortBy=SubmissionTime&sortOrder=Descending&statusEquals=Completed&submitTimeAfter=2026-01-01T00%3A00%3A00Z&submitTimeBefore=2026-02-01T00%3A00%3A00Z",
			"maxResults=5&nextToken=abc%2B%3D&sortBy=SubmissionTime&sortOrder=Descending&statusEquals=Completed&submitTimeAfter=2026-01-01T00%3A00%3A00Z&submitTimeBefore=2026-02-01T00%3A00%3A00Z", false},
		{"list drops the rest", OpListAsyncInvokes, "X-Amz-Security-Token=tok&maxResults=5&X-Amz-Signature=abc", "maxResults=5", false},
		{"names are case-sensitive", OpListAsyncInvokes, "MaxResults=5", "", false},
		{"malformed escape", OpListAsyncInvokes, "maxResults=%zz", "", true},
		{"malformed even where nothing is kept", OpConverse, "a=%", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := UpstreamQuery(tc.op, tc.raw)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if err != nil {
				var be *Error
				if !errors.As(err, &be) || be.Type != "ValidationException" {
					t.Fatalf("err = %#v, want a ValidationException", err)
				}
				return
			}
			if got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}
