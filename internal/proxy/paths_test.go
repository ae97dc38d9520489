package proxy

import (
	"fmt"
	"testing"

	"github.com/bedrock-gateway/gateway/internal/bedrock"
)

// TestModelPathsCache: cached paths equal freshly built ones, per operation
// and model, and the cache stays bounded.
func TestModelPathsCache(t *testing.T) {
	t.Parallel()
	var p modelPaths
	for _, tc := range []struct {
		op             bedrock.Operation
		model          string
		wantRaw, wantP string
	}{
		{bedrock.OpConverse, "anthropic.claude-3-5-haiku-20241022-v1:0",
			"/model/anthropic.claude-3-5-haiku-20241022-v1%3A0/converse", "/model/anthropic.claude-3-5-haiku-20241022-v1:0/converse"},
		{bedrock.OpConverseStream, "anthropic.claude-3-5-haiku-20241022-v1:0",
			"/model/anthropic.claude-3-5-haiku-20241022-v1%3A0/converse-stream", "/model/anthropic.claude-3-5-haiku-20241022-v1:0/converse-stream"},
		{bedrock.OpInvokeModel, "arn:aws:bedrock:us-east-1:111111111111:inference-profile/us.x",
			"/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A111111111111%3Ainference-profile%2Fus.x/invoke",
			"/model/arn:aws:bedrock:us-east-1:111111111111:inference-profile/us.x/invoke"},
	} {
		for range 2 { // built, then cached
			raw, path, err := p.get(tc.op, tc.model)
			if err != nil || raw != tc.wantRaw || path != tc.wantP {
				t.Errorf("%v %s: %q %q %v, want %q %q", tc.op, tc.model, raw, path, err, tc.wantRaw, tc.wantP)
			}
		}
	}
	for i := range maxModelPaths + 10 {
		if _, _, err := p.get(bedrock.OpConverse, fmt.Sprint("m", i)); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(p.m); n > maxModelPaths {
		t.Errorf("cache holds %d paths, bound %d", n, maxModelPaths)
	}
}
