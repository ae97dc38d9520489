// Package bidisdk holds what tests need to drive InvokeModelWithBidirectionalStream
// with the official Go SDK: send a native input chunk, wait for the next output
// chunk, and build or read Nova Sonic-style text events.
package bidisdk

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"
)

// Stream is the SDK's bidirectional event stream.
type Stream = bedrockruntime.InvokeModelWithBidirectionalStreamEventStream

// TextInput is a Nova Sonic-style text input event.
func TextInput(text string) []byte {
	b, _ := json.Marshal(map[string]any{"event": map[string]any{"textInput": map[string]any{"content": text}}})
	return b
}

// TextOutput reads the text of a Nova Sonic-style text output event ("" if none).
func TextOutput(doc map[string]any) string {
	ev, _ := doc["event"].(map[string]any)
	to, _ := ev["textOutput"].(map[string]any)
	s, _ := to["content"].(string)
	return s
}

// Send sends one native input chunk.
func Send(ctx context.Context, s *Stream, native []byte) error {
	return s.Send(ctx, &types.InvokeModelWithBidirectionalStreamInputMemberChunk{Value: types.BidirectionalInputPayloadPart{Bytes: native}})
}

// Next waits for the next output chunk's native JSON (nil when the stream ended).
func Next(t testing.TB, s *Stream) map[string]any {
	t.Helper()
	select {
	case ev, ok := <-s.Events():
		if !ok {
			return nil
		}
		c, isChunk := ev.(*types.InvokeModelWithBidirectionalStreamOutputMemberChunk)
		if !isChunk {
			t.Fatalf("unexpected event %T", ev)
		}
		var doc map[string]any
		if err := json.Unmarshal(c.Value.Bytes, &doc); err != nil {
			t.Fatalf("output chunk %q: %v", c.Value.Bytes, err)
		}
		return doc
	case <-time.After(10 * time.Second): // a deadlock guard, not a timing assertion
		t.Fatal("no output event")
		return nil
	}
}
