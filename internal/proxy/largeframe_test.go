package proxy

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	brtypes "github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"

	"github.com/bedrock-gateway/gateway/internal/bedrock"
)

// TestStreamFramesLargerThanTheCopyBuffer: an event far larger than the
// stream's copy buffer (a long text or image chunk), arriving from the
// upstream in odd pieces, reaches the official SDK whole, and the usage in
// the frames after it is still read.
func TestStreamFramesLargerThanTheCopyBuffer(t *testing.T) {
	t.Parallel()
	text := strings.Repeat("0123456789abcdef", 100<<10/16) // 100 KiB in one delta
	var stream bytes.Buffer
	stream.Write(bedrock.EncodeEventFrame("messageStart", []byte(`{"role":"assistant"}`)))
	stream.Write(bedrock.EncodeEventFrame("contentBlockDelta", []byte(`{"contentBlockIndex":0,"delta":{"text":"`+text+`"}}`)))
	stream.Write(bedrock.EncodeEventFrame("contentBlockStop", []byte(`{"contentBlockIndex":0}`)))
	stream.Write(bedrock.EncodeEventFrame("messageStop", []byte(`{"stopReason":"end_turn"}`)))
	stream.Write(bedrock.EncodeEventFrame("metadata", []byte(`{"usage":{"inputTokens":7,"outputTokens":25600,"totalTokens":25607},"metrics":{"latencyMs":5}}`)))
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/vnd.amazon.eventstream")
		w.WriteHeader(http.StatusOK)
		b := stream.Bytes()
		for i, n := 0, 0; i < len(b); i += n {
			n = min(len(b)-i, 1000+i%7777) // pieces that never line up with frames or buffers
			_, _ = w.Write(b[i : i+n])
			w.(http.Flusher).Flush()
		}
	}))
	t.Cleanup(up.Close)
	h := newHarness(t, harnessOptions{upstream: up.URL})
	out, err := h.client(t, devAKID, devSecret).ConverseStream(context.Background(), &bedrockruntime.ConverseStreamInput{
		ModelId: aws.String("support-llm"), Messages: userMessage("a long answer, please"),
		InferenceConfig: &brtypes.InferenceConfiguration{MaxTokens: aws.Int32(30000)}})
	if err != nil {
		t.Fatal(err)
	}
	var got strings.Builder
	for ev := range out.GetStream().Events() {
		if d, ok := ev.(*brtypes.ConverseStreamOutputMemberContentBlockDelta); ok {
			if txt, ok := d.Value.Delta.(*brtypes.ContentBlockDeltaMemberText); ok {
				got.WriteString(txt.Value)
			}
		}
	}
	if err := out.GetStream().Err(); err != nil {
		t.Fatal(err)
	}
	if got.String() != text {
		t.Fatalf("the client got %d bytes of text, want the %d sent", got.Len(), len(text))
	}
	s := h.quota.settlements()
	if len(s) != 1 || s[0].usage.InputTokens != 7 || s[0].usage.OutputTokens != 25600 {
		t.Fatalf("settlements %+v, want one with the stream's usage (7 in, 25600 out)", s)
	}
}
