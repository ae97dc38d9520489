package bedrock

import (
	"bytes"
	"encoding/base64"

	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
)

// Event-stream header names and values the gateway writes and reads.
const (
	hdrMessageType   = ":message-type"
	hdrEventType     = ":event-type"
	hdrExceptionType = ":exception-type"
	hdrContentType   = ":content-type"
	hdrErrorCode     = ":error-code"
	hdrErrorMessage  = ":error-message"

	contentTypeJSON = "application/json"
)

// EncodeEventFrame encodes one event-stream event message with the headers
// Bedrock sends (:event-type, :content-type application/json, :message-type
// event, in that order). eventType must be shorter than 32 KiB; it is always a
// member name in practice. It returns nil if the frame cannot be encoded.
func EncodeEventFrame(eventType string, payload []byte) []byte {
	return encodeFrame(eventstream.Headers{
		{Name: hdrEventType, Value: eventstream.StringValue(eventType)},
		{Name: hdrContentType, Value: eventstream.StringValue(contentTypeJSON)},
		{Name: hdrMessageType, Value: eventstream.StringValue("event")},
	}, payload)
}

// EncodeExceptionFrame encodes e as a modeled exception message: :exception-type
// is the lowerCamel member name (the only form botocore and the JS SDK
// recognise), the payload {"message": ...}. This is the only way to report an
// error once the HTTP 200 of a stream has been sent.
func EncodeExceptionFrame(e *Error) []byte {
	return encodeFrame(eventstream.Headers{
		{Name: hdrExceptionType, Value: eventstream.StringValue(e.StreamMemberName())},
		{Name: hdrContentType, Value: eventstream.StringValue(contentTypeJSON)},
		{Name: hdrMessageType, Value: eventstream.StringValue("exception")},
	}, ErrorBody(e.Message))
}

// EncodeChunkFrame wraps a model's native chunk as InvokeModelWithResponseStream
// sends it: a "chunk" event whose payload is {"bytes":"<base64>"}.
func EncodeChunkFrame(nativeChunk []byte) []byte {
	const prefix, suffix = `{"bytes":"`, `"}`
	payload := make([]byte, 0, len(prefix)+base64.StdEncoding.EncodedLen(len(nativeChunk))+len(suffix))
	payload = append(payload, prefix...)
	payload = base64.StdEncoding.AppendEncode(payload, nativeChunk)
	payload = append(payload, suffix...)
	return EncodeEventFrame("chunk", payload)
}

func encodeFrame(headers eventstream.Headers, payload []byte) []byte {
	var buf bytes.Buffer
	// Prelude and CRCs (16) plus a generous allowance for the three headers.
	buf.Grow(16 + 128 + len(payload))
	if err := eventstream.NewEncoder().Encode(&buf, eventstream.Message{Headers: headers, Payload: payload}); err != nil {
		return nil
	}
	return buf.Bytes()
}
