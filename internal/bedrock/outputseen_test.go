package bedrock

import (
	"bytes"
	"strings"
	"testing"
)

func TestGeneratedTextBytes(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, json string
		want       int64
	}{
		{"converse text delta", `{"contentBlockIndex":0,"delta":{"text":"Hello there"}}`, 11},
		{"converse tool input", `{"contentBlockIndex":1,"delta":{"toolUse":{"input":"{\"city\":"}}}`, 10},
		{"converse reasoning", `{"contentBlockIndex":0,"delta":{"reasoningContent":{"text":"abcd"}}}`, 4},
		{"anthropic text delta", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"12345678"}}`, 8},
		{"anthropic json delta", `{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"a\""}}`, 6},
		{"titan", `{"outputText":"abc","index":0,"totalOutputTextTokenCount":null}`, 3},
		{"llama", `{"generation":"abcdef","prompt_token_count":null}`, 6},
		{"mistral", `{"outputs":[{"text":"ab","stop_reason":null},{"text":"cd"}]}`, 4},
		{"nested too deep", `{"a":{"b":{"c":{"d":{"text":"x"}}}}}`, 0},
		{"not text", `{"role":"assistant","type":"message_start"}`, 0},
		{"empty", ``, 0},
		{"broken after a member", `{"text":"abc","x":`, 3},
		{"array at top", `[{"text":"ab"}]`, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := generatedTextBytes([]byte(tc.json), maxTextDepth); got != tc.want {
				t.Fatalf("got %d, want %d", got, tc.want)
			}
		})
	}
}

func TestTokensForBytes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want int64 }{{-1, 0}, {0, 0}, {1, 1}, {4, 1}, {5, 2}, {400, 100}} {
		if got := TokensForBytes(tc.in); got != tc.want {
			t.Errorf("TokensForBytes(%d) = %d, want %d", tc.in, got, tc.want)
		}
	}
}

// A stream cut before its usage still tells how much output it generated.
func TestOutputSeen(t *testing.T) {
	t.Parallel()
	full, _ := converseStream(10, Usage{InputTokens: 5, OutputTokens: 100})
	cut := full[:bytes.LastIndex(full, []byte("contentBlockStop"))-40] // before the last frames
	s := NewStreamScanner(OpConverseStream)
	_, _ = s.Write(cut)
	if _, ok := s.Usage(); ok {
		t.Fatal("usage known from a cut stream")
	}
	text := int64(len("token 0 of a reply that says usage and metadata "))
	if got, min := s.OutputSeen(), TokensForBytes(text*9); got < min {
		t.Fatalf("OutputSeen = %d, want at least %d", got, min)
	}

	// Anthropic native: the larger of its own count and the text seen.
	native, _ := invokeStreamText(20, Usage{InputTokens: 9, OutputTokens: 1}, Usage{}, strings.Repeat("x", 40))
	cut = native[:len(native)/2]
	s = NewStreamScanner(OpInvokeModelWithResponseStream)
	_, _ = s.Write(cut)
	if got := s.OutputSeen(); got < 10 {
		t.Fatalf("native OutputSeen = %d, want the text seen (>= 10), not message_start's 1", got)
	}
}

func FuzzGeneratedTextBytes(f *testing.F) {
	for _, s := range []string{`{"delta":{"text":"hi"}}`, `{"outputs":[{"text":"a"}]}`, `[`, `{"text":`, `""`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, d []byte) {
		if n := generatedTextBytes(d, maxTextDepth); n < 0 || n > int64(len(d)) {
			t.Fatalf("generatedTextBytes = %d for %d bytes", n, len(d))
		}
	})
}
