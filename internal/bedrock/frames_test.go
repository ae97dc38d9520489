package bedrock

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
)

// A ConverseStream messageStop frame as Bedrock sends it, byte for byte.
func messageStopFrame(t *testing.T) []byte {
	t.Helper()
	var b bytes.Buffer
	mustHex := func(s string) {
		raw, err := hex.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(raw)
	}
	mustHex("0000007a" + "00000051" + "ca2c4665")
	b.WriteString("\x0b:event-type\x07\x00\x0bmessageStop")
	b.WriteString("\x0d:content-type\x07\x00\x10application/json")
	b.WriteString("\x0d:message-type\x07\x00\x05event")
	b.WriteString(`{"stopReason":"end_turn"}`)
	mustHex("5fbf09fc")
	return b.Bytes()
}

func TestEncodeEventFrameMatchesWireExample(t *testing.T) {
	t.Parallel()
	want := messageStopFrame(t)
	if len(want) != 122 {
		t.Fatalf("reference frame is %d bytes, want 122", len(want))
	}
	got := EncodeEventFrame("messageStop", []byte(`{"stopReason":"end_turn"}`))
	if !bytes.Equal(got, want) {
		t.Fatalf("frame mismatch\n got %x\nwant %x", got, want)
	}
}

func decodeFrame(t *testing.T, frame []byte) eventstream.Message {
	t.Helper()
	r := bytes.NewReader(frame)
	m, err := eventstream.NewDecoder().Decode(r, nil)
	if err != nil {
		t.Fatalf("decoding frame: %v", err)
	}
	if r.Len() != 0 {
		t.Fatalf("%d bytes left after the frame", r.Len())
	}
	return m
}

func header(m eventstream.Message, name string) string {
	v := m.Headers.Get(name)
	if v == nil {
		return ""
	}
	return v.String()
}

func TestEncodeExceptionFrame(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err      *Error
		wantType string
	}{
		{Throttling("Too many tokens, please wait.", 0), "throttlingException"},
		{Internal(`quote " and \ backslash`), "internalServerException"},
		{&Error{Type: "ModelStreamErrorException", Message: ""}, "modelStreamErrorException"},
	}
	for _, tt := range tests {
		m := decodeFrame(t, EncodeExceptionFrame(tt.err))
		if got := header(m, ":exception-type"); got != tt.wantType {
			t.Errorf(":exception-type = %q, want %q", got, tt.wantType)
		}
		if got := header(m, ":message-type"); got != "exception" {
			t.Errorf(":message-type = %q", got)
		}
		if got := header(m, ":content-type"); got != "application/json" {
			t.Errorf(":content-type = %q", got)
		}
		var body struct{ Message string }
		if err := json.Unmarshal(m.Payload, &body); err != nil || body.Message != tt.err.Message {
			t.Errorf("payload %s: message %q, err %v", m.Payload, body.Message, err)
		}
	}
}

func TestEncodeChunkFrame(t *testing.T) {
	t.Parallel()
	for _, native := range [][]byte{nil, []byte(`{"type":"message_stop"}`), bytes.Repeat([]byte{0xff, 0x00}, 1000)} {
		m := decodeFrame(t, EncodeChunkFrame(native))
		if got := header(m, ":event-type"); got != "chunk" {
			t.Errorf(":event-type = %q", got)
		}
		if got := header(m, ":message-type"); got != "event" {
			t.Errorf(":message-type = %q", got)
		}
		var part struct{ Bytes []byte }
		if err := json.Unmarshal(m.Payload, &part); err != nil {
			t.Fatalf("payload %s: %v", m.Payload, err)
		}
		if !bytes.Equal(part.Bytes, native) {
			t.Errorf("bytes round trip: got %q want %q", part.Bytes, native)
		}
		if want := `{"bytes":"` + base64.StdEncoding.EncodeToString(native) + `"}`; string(m.Payload) != want {
			t.Errorf("payload %s, want %s", m.Payload, want)
		}
	}
}

func TestEncodeEventFrameTooLongType(t *testing.T) {
	t.Parallel()
	if f := EncodeEventFrame(string(make([]byte, 40000)), nil); f != nil {
		t.Errorf("oversized event type encoded to %d bytes, want nil", len(f))
	}
}
