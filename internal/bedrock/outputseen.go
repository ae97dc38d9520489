package bedrock

// What a stream generated before it broke. When a stream ends without its
// usage (the upstream failed mid-way, the client left longer than the drain
// timeout, the gateway shut down), the gateway charges the input estimate plus
// the output actually seen, marked as estimated, rather than the whole
// reservation: these helpers measure that output.

// generatedTextKeys are the members that carry generated text in stream
// events: ConverseStream's contentBlockDelta (text, toolUse input, reasoning
// text) and the native chunks of every model family (Anthropic text and
// partial_json, Titan outputText, Llama generation, legacy completion, Mistral
// and Cohere text, Nova's native contentBlockDelta).
var generatedTextKeys = map[string]bool{
	"text": true, "input": true, "partial_json": true, "outputText": true,
	"generation": true, "completion": true,
}

// maxTextDepth bounds the nesting searched for generated text (Mistral's
// outputs[].text is the deepest: three levels).
const maxTextDepth = 4

// bytesPerToken converts generated text to tokens for an estimate: about four
// bytes of English a token for the models Bedrock serves, rounded up.
const bytesPerToken = 4

// TokensForBytes estimates the tokens of n bytes of generated text.
func TokensForBytes(n int64) int64 {
	if n <= 0 {
		return 0
	}
	return (n + bytesPerToken - 1) / bytesPerToken
}

// generatedTextBytes sums the lengths of the generated-text string members
// found in the JSON value d, searching nested objects and arrays up to depth.
// Malformed JSON counts what was found before the damage.
func generatedTextBytes(d []byte, depth int) int64 {
	i := skipWS(d, 0)
	if i >= len(d) {
		return 0
	}
	switch d[i] {
	case '{':
		var n int64
		_ = eachMember(d[i:], func(k, v []byte) {
			if len(v) == 0 {
				return
			}
			switch {
			case v[0] == '"' && generatedTextKeys[string(k)]:
				n += int64(len(v) - 2)
			case (v[0] == '{' || v[0] == '[') && depth > 1:
				n += generatedTextBytes(v, depth-1)
			}
		})
		return n
	case '[':
		var n int64
		j := skipWS(d, i+1)
		for j < len(d) && d[j] != ']' {
			end, err := skipValue(d, j)
			if err != nil {
				return n
			}
			if depth > 1 {
				n += generatedTextBytes(d[j:end], depth-1)
			}
			j = skipWS(d, end)
			if j < len(d) && d[j] == ',' {
				j = skipWS(d, j+1)
			}
		}
		return n
	}
	return 0
}
