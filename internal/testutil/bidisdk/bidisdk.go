// Package bidisdk holds what tests need to drive InvokeModelWithBidirectionalStream
// with the official Go SDK: send a native input chunk, wait for the next output
// chunk, and build or read Nova Sonic-style text events; and, for tests that
// write the stream by hand, the input event the SDK would write.
package bidisdk

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
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

// InputEvent is the inner "chunk" event the SDK writes for native input
// bytes, headers in the SDK's order, before signing it into an envelope: a
// test that writes a bidirectional stream by hand signs this.
func InputEvent(t testing.TB, native []byte) []byte {
	t.Helper()
	var msg eventstream.Message
	msg.Headers.Set(":message-type", eventstream.StringValue("event"))
	msg.Headers.Set(":event-type", eventstream.StringValue("chunk"))
	msg.Headers.Set(":content-type", eventstream.StringValue("application/json"))
	msg.Payload = []byte(`{"bytes":"` + base64.StdEncoding.EncodeToString(native) + `"}`)
	var buf bytes.Buffer
	if err := eventstream.NewEncoder().Encode(&buf, msg); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
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
