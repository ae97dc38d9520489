package sim

import (
	"encoding/json"
	"strings"
)

// DefaultOutputTokens is the output length when neither Options.OutputTokens nor
// X-Sim-Output-Tokens says otherwise.
const DefaultOutputTokens = 24

// loremWords is cycled to produce generated text; one word is one output token.
// Each carries the space that precedes it in running text.
var loremWords = [...]string{
	" lorem", " ipsum", " dolor", " sit", " amet", " consectetur", " adipiscing", " elit",
	" sed", " do", " eiusmod", " tempor", " incididunt", " ut", " labore", " et", " dolore",
	" magna", " aliqua",
}

// word returns the i-th generated word as it appears in a stream delta: words after
// the first carry a leading space, so concatenated deltas equal the full text.
func word(i int) string {
	w := loremWords[i%len(loremWords)]
	if i == 0 {
		return w[1:]
	}
	return w
}

// generatedText is the full text of n output tokens.
func generatedText(n int) string {
	var b strings.Builder
	for i := range n {
		b.WriteString(word(i))
	}
	return b.String()
}

// countWords counts whitespace-separated words.
func countWords(s string) int64 { return int64(len(strings.Fields(s))) }

// inputTokens counts the words of all prompt text in a request body (see the package
// doc); doc is the body decoded by decodeObject, nil when the body is not a JSON
// object, which counts len(body)/4. The result is at least 1.
func inputTokens(body []byte, doc map[string]any) int64 {
	if doc == nil {
		return max(int64(len(body)/4), 1)
	}
	return max(promptWords(doc), 1)
}

// promptWords counts the words of the prompt members of a decoded request object.
// It knows every family's members at once: they do not collide.
func promptWords(doc map[string]any) int64 {
	var n int64
	n += textWords(doc["system"])
	if msgs, ok := doc["messages"].([]any); ok {
		for _, m := range msgs {
			if mm, ok := m.(map[string]any); ok {
				n += textWords(mm["content"])
			}
		}
	}
	for _, k := range [...]string{"inputText", "prompt"} {
		if s, ok := doc[k].(string); ok {
			n += countWords(s)
		}
	}
	if texts, ok := doc["texts"].([]any); ok {
		for _, t := range texts {
			if s, ok := t.(string); ok {
				n += countWords(s)
			}
		}
	}
	return n
}

// textWords counts the words of a content value: a string, or a list of blocks (or
// strings) whose "text" members carry text.
func textWords(v any) int64 {
	switch v := v.(type) {
	case string:
		return countWords(v)
	case []any:
		var n int64
		for _, b := range v {
			switch b := b.(type) {
			case string:
				n += countWords(b)
			case map[string]any:
				if s, ok := b["text"].(string); ok {
					n += countWords(s)
				}
			}
		}
		return n
	}
	return 0
}

// requestedMaxTokens returns the maximum output the request asks for, in whichever
// family's member carries it; ok is false when the request sets none.
func requestedMaxTokens(doc map[string]any) (n int64, ok bool) {
	num := func(v any) (int64, bool) {
		f, ok := v.(float64)
		if !ok || f < 0 {
			return 0, false
		}
		if f > 1<<31 {
			f = 1 << 31
		}
		return int64(f), true
	}
	if n, ok := num(doc["max_tokens"]); ok { // Anthropic, Mistral, Cohere, AI21
		return n, true
	}
	if n, ok := num(doc["max_gen_len"]); ok { // Llama
		return n, true
	}
	if c, isObj := doc["textGenerationConfig"].(map[string]any); isObj { // Titan
		if n, ok := num(c["maxTokenCount"]); ok {
			return n, true
		}
	}
	if c, isObj := doc["inferenceConfig"].(map[string]any); isObj {
		if n, ok := num(c["maxTokens"]); ok { // Converse
			return n, true
		}
		if n, ok := num(c["max_new_tokens"]); ok { // Nova invoke
			return n, true
		}
	}
	return 0, false
}

// decodeObject decodes body as a JSON object; it returns nil when it is not one.
func decodeObject(body []byte) map[string]any {
	var doc map[string]any
	if json.Unmarshal(body, &doc) != nil {
		return nil
	}
	return doc
}
