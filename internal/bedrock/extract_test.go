package bedrock

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

func TestUsageFromInvokeHeaders(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		h    map[string]string
		want Usage
		ok   bool
	}{
		{"all four", map[string]string{
			"X-Amzn-Bedrock-Input-Token-Count": "7", "X-Amzn-Bedrock-Output-Token-Count": "126",
			"X-Amzn-Bedrock-Cache-Read-Input-Token-Count": "14486", "X-Amzn-Bedrock-Cache-Write-Input-Token-Count": "2238",
			"X-Amzn-Bedrock-Invocation-Latency": "4069",
		}, Usage{InputTokens: 7, OutputTokens: 126, CacheReadTokens: 14486, CacheWriteTokens: 2238}, true},
		{"lower-case names", map[string]string{"x-amzn-bedrock-input-token-count": "3", "x-amzn-bedrock-output-token-count": "4"}, Usage{InputTokens: 3, OutputTokens: 4}, true},
		{"input only (embeddings)", map[string]string{"X-Amzn-Bedrock-Input-Token-Count": "12"}, Usage{InputTokens: 12}, true},
		{"output only", map[string]string{"X-Amzn-Bedrock-Output-Token-Count": "0"}, Usage{}, true},
		{"none", map[string]string{"Content-Type": "application/json"}, Usage{}, false},
		{"cache only", map[string]string{"X-Amzn-Bedrock-Cache-Read-Input-Token-Count": "5"}, Usage{}, false},
		{"negative", map[string]string{"X-Amzn-Bedrock-Input-Token-Count": "-1", "X-Amzn-Bedrock-Output-Token-Count": "4"}, Usage{}, false},
		{"not a number", map[string]string{"X-Amzn-Bedrock-Input-Token-Count": "abc", "X-Amzn-Bedrock-Output-Token-Count": "4"}, Usage{}, false},
		{"empty", map[string]string{"X-Amzn-Bedrock-Input-Token-Count": "", "X-Amzn-Bedrock-Output-Token-Count": "4"}, Usage{}, false},
		{"bad cache header", map[string]string{"X-Amzn-Bedrock-Input-Token-Count": "1", "X-Amzn-Bedrock-Output-Token-Count": "4", "X-Amzn-Bedrock-Cache-Write-Input-Token-Count": "1.5"}, Usage{}, false},
		{"overflowing", map[string]string{"X-Amzn-Bedrock-Input-Token-Count": "99999999999999999999", "X-Amzn-Bedrock-Output-Token-Count": "4"}, Usage{}, false},
	}
	for _, tt := range tests {
		h := http.Header{}
		for k, v := range tt.h {
			h.Set(k, v)
		}
		got, ok := UsageFromInvokeHeaders(h)
		if ok != tt.ok || got != tt.want {
			t.Errorf("%s: got %+v, %v; want %+v, %v", tt.name, got, ok, tt.want, tt.ok)
		}
	}
}

const converseResponse = `{"metrics":{"latencyMs":512},"output":{"message":{"content":[{"text":"The \"usage\": {\"inputTokens\": 999} is in text.\\"}],"role":"assistant"}},"stopReason":"end_turn","usage":{"inputTokens":12,"outputTokens":34,"totalTokens":46,"cacheReadInputTokens":5,"cacheWriteInputTokens":6}}`

func TestUsageFromConverseBody(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		body string
		want Usage
		ok   bool
	}{
		{"full", converseResponse, Usage{InputTokens: 12, OutputTokens: 34, CacheReadTokens: 5, CacheWriteTokens: 6}, true},
		{"no cache", `{"output":{},"usage":{"inputTokens":1,"outputTokens":2,"totalTokens":3}}`, Usage{InputTokens: 1, OutputTokens: 2}, true},
		{"whitespace", " {\n \"usage\" :\t{ \"outputTokens\" : 2 , \"inputTokens\" : 1 } } \n", Usage{InputTokens: 1, OutputTokens: 2}, true},
		{"usage first, nested usage later ignored", `{"usage":{"inputTokens":1,"outputTokens":2},"output":{"usage":{"inputTokens":9,"outputTokens":9}}}`, Usage{InputTokens: 1, OutputTokens: 2}, true},
		{"escaped key", `{"us\u0061ge":{"inputTokens":1,"outputTokens":2}}`, Usage{InputTokens: 1, OutputTokens: 2}, true},
		{"missing output", `{"usage":{"inputTokens":1}}`, Usage{}, false},
		{"no usage", `{"output":{"message":{}}}`, Usage{}, false},
		{"usage not object", `{"usage":[1,2]}`, Usage{}, false},
		{"usage null", `{"usage":null}`, Usage{}, false},
		{"negative", `{"usage":{"inputTokens":-1,"outputTokens":2}}`, Usage{}, false},
		{"fraction", `{"usage":{"inputTokens":1.5,"outputTokens":2}}`, Usage{}, false},
		{"string count", `{"usage":{"inputTokens":"1","outputTokens":2}}`, Usage{}, false},
		{"truncated", converseResponse[:len(converseResponse)-10], Usage{}, false},
		{"trailing garbage", converseResponse + "x", Usage{}, false},
		{"array", `[{"usage":{"inputTokens":1,"outputTokens":2}}]`, Usage{}, false},
		{"empty", ``, Usage{}, false},
		{"empty object", `{}`, Usage{}, false},
		{"unterminated string", `{"output":"abc`, Usage{}, false},
	}
	for _, tt := range tests {
		got, ok := UsageFromConverseBody([]byte(tt.body))
		if ok != tt.ok || got != tt.want {
			t.Errorf("%s: got %+v, %v; want %+v, %v", tt.name, got, ok, tt.want, tt.ok)
		}
	}
}

func TestUsageFromConverseBodyAllocations(t *testing.T) {
	body := []byte(converseResponse)
	if n := testing.AllocsPerRun(100, func() { UsageFromConverseBody(body) }); n != 0 {
		t.Errorf("%v allocations, want 0", n)
	}
}

func TestJSONCount(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true}, {"4096", 4096, true}, {"100.0", 100, true}, {"1e3", 1000, true}, {"1E+2", 100, true},
		{"-0", 0, true}, {"9007199254740992", 1 << 53, true},
		{"-1", 0, false}, {"1.5", 0, false}, {"007", 0, false}, {"1e400", 0, false}, {"9007199254740993", 0, false},
		{"99999999999999999999", 0, false}, {`"5"`, 0, false}, {"true", 0, false}, {"", 0, false},
		{"0x10", 0, false}, {"Inf", 0, false}, {"NaN", 0, false}, {"1_0", 0, false}, {".5", 0, false}, {"1.", 0, false}, {"1e", 0, false},
	}
	for _, tt := range tests {
		got, err := jsonCount([]byte(tt.in))
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("jsonCount(%q) = %d, %v; want %d, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

// TestEachMemberAgreesWithEncodingJSON checks the walker against the standard
// decoder on valid objects: same keys (last wins), same raw values.
func TestEachMemberAgreesWithEncodingJSON(t *testing.T) {
	t.Parallel()
	docs := []string{
		`{}`, `{"a":1}`, ` { "a" : [1, {"b": "}"}, "]"] , "c\"d" : "x\\", "e": {"f": [[], {}]}, "g": null, "h": true, "i": -1.5e3 } `,
		`{"\u00e9":"\ud83d\ude00","a\/b":"\"","":""}`, `{"a":1,"a":2}`,
	}
	for _, doc := range docs {
		var want map[string]json.RawMessage
		if err := json.Unmarshal([]byte(doc), &want); err != nil {
			t.Fatalf("%s: %v", doc, err)
		}
		got := map[string]string{}
		if err := eachMember([]byte(doc), func(k, v []byte) { got[string(k)] = string(v) }); err != nil {
			t.Fatalf("%s: eachMember: %v", doc, err)
		}
		if len(got) != len(want) {
			t.Errorf("%s: keys %v, want %v", doc, got, want)
		}
		for k, v := range want {
			if got[k] != strings.TrimSpace(string(v)) {
				t.Errorf("%s: key %q = %q, want %q", doc, k, got[k], v)
			}
		}
	}
}

func FuzzUsageFromConverseBody(f *testing.F) {
	f.Add([]byte(converseResponse))
	f.Add([]byte(`{"usage":{"inputTokens":1,"outputTokens":2}}`))
	f.Add([]byte(`{"a":"\\\"","usage":{"inputTokens":1e2,"outputTokens":0}}`))
	f.Add([]byte(`{"a":[{"b":"]"}],"us\u0061ge":{}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		u, ok := UsageFromConverseBody(body)
		if !ok {
			if u != (Usage{}) {
				t.Fatalf("not ok but usage %+v", u)
			}
			return
		}
		if u.InputTokens < 0 || u.OutputTokens < 0 || u.CacheReadTokens < 0 || u.CacheWriteTokens < 0 {
			t.Fatalf("negative usage %+v", u)
		}
		// On valid JSON, encoding/json (with exact key matching) must agree.
		if !json.Valid(body) {
			return
		}
		var top, usage map[string]json.RawMessage
		if json.Unmarshal(body, &top) != nil || json.Unmarshal(top["usage"], &usage) != nil {
			t.Fatalf("walker found usage %+v that encoding/json does not", u)
		}
		var in, out int64
		if json.Unmarshal(usage["inputTokens"], &in) != nil || json.Unmarshal(usage["outputTokens"], &out) != nil ||
			in != u.InputTokens || out != u.OutputTokens {
			t.Fatalf("walker %+v, encoding/json in=%d out=%d", u, in, out)
		}
	})
}

func BenchmarkUsageFromConverseBody(b *testing.B) {
	body := []byte(strings.Replace(converseResponse, `is in text.`, strings.Repeat("A long answer with \"quotes\" and words. ", 200), 1))
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, ok := UsageFromConverseBody(body); !ok {
			b.Fatal("no usage")
		}
	}
}

func TestValidJSONAgreesWithEncodingJSON(t *testing.T) {
	t.Parallel()
	docs := []string{
		``, ` `, `{}`, `[]`, `{ }`, `[ ]`, `0`, `-0`, `-`, `01`, `1.`, `1.0`, `.5`, `1e5`, `1E+5`, `1e-5`, `1e`, `1e+`, `-1.5e-3`,
		`true`, `false`, `null`, `tru`, `nul`, `truex`, `True`, `"a"`, `"`, `"\"`, `"\\"`, `"\/\b\f\n\r\t"`, `"\u00e9"`, `"\u00g9"`, `"\u00e"`,
		`"\x"`, "\"a\x01b\"", "\"a\x7fb\"", "\"\xff\xfe\"", `{"a":1}`, `{"a":1,}`, `{"a" 1}`, `{a:1}`, `{"a":}`, `{,}`, `[1,]`, `[,1]`, `[1 2]`,
		`{"a":[1,{"b":null}],"c":{"d":[[]]}}`, `{"a":1}}`, `[[]`, `[]]`, `{"a":1]`, `[1}`, `{} {}`, ` {} `, "\t{\n}\r", `{"a":"b"`, `[1,2,3`,
		`"abc`, `{"\"":"\\"}`, `{"a":tru}`, `[-]`, `[1-2]`, `[0x10]`, `[Infinity]`, `[NaN]`, "\u00a0{}",
	}
	for _, doc := range docs {
		if got, want := validJSON([]byte(doc)), json.Valid([]byte(doc)); got != want {
			t.Errorf("validJSON(%q) = %v, json.Valid = %v", doc, got, want)
		}
	}
	for _, depth := range []int{maxJSONDepth - 1, maxJSONDepth, maxJSONDepth + 1} {
		for _, open := range []string{"[", `{"a":`} {
			closeB := "]"
			if open != "[" {
				closeB = "}"
			}
			doc := []byte(strings.Repeat(open, depth) + strings.Repeat(closeB, depth))
			if got, want := validJSON(doc), json.Valid(doc); got != want {
				t.Errorf("depth %d %s: validJSON %v, json.Valid %v", depth, open, got, want)
			}
		}
	}
}

func FuzzValidJSON(f *testing.F) {
	for _, s := range []string{`{"a":[1,{"b":"\u00e9\n"}],"c":-1.5e3,"d":true,"e":null}`, `[1,2`, `"\ud83d"`, `{"a":"b"}x`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, d []byte) {
		if got, want := validJSON(d), json.Valid(d); got != want {
			t.Fatalf("validJSON(%q) = %v, json.Valid = %v", d, got, want)
		}
	})
}

func BenchmarkValidJSON(b *testing.B) {
	prompt := strings.Repeat(`{"role":"user","content":[{"type":"text","text":"Summarise the following ticket, with \"quotes\" and escapes \\n included. "}]},`, 100)
	image := strings.Repeat("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg", 1000)
	for _, doc := range []struct{ name, body string }{
		{"prompt-16KiB", `{"messages":[` + prompt + `{"role":"user","content":"go"}],"max_tokens":1024}`},
		{"image-100KiB", `{"messages":[{"role":"user","content":[{"type":"image","source":{"type":"base64","data":"` + image + `"}}]}],"max_tokens":1024}`},
	} {
		body := []byte(doc.body)
		b.Run(doc.name+"/validJSON", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if !validJSON(body) {
					b.Fatal("invalid")
				}
			}
		})
		b.Run(doc.name+"/json.Valid", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if !json.Valid(body) {
					b.Fatal("invalid")
				}
			}
		})
	}
}
