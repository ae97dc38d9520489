package sim

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

func FuzzInputTokens(f *testing.F) {
	for _, tc := range invokeCases {
		f.Add([]byte(tc.body))
	}
	f.Add([]byte(`{"system":[{"text":1}],"messages":[{"content":[1,"a b",{"text":null}]}],"texts":[2,"x"]}`))
	f.Add([]byte(`{"max_tokens":-1,"inferenceConfig":{"maxTokens":1e300}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		doc := decodeObject(body)
		if n := inputTokens(body, doc); n < 1 {
			t.Fatalf("inputTokens = %d", n)
		}
		if n, ok := requestedMaxTokens(doc); ok && (n < 0 || n > 1<<31) {
			t.Fatalf("requestedMaxTokens = %d", n)
		}
		_ = familyOf(string(body), doc)
	})
}

// FuzzServeHTTP drives the whole request parser: any path, body and control header
// gets a well-formed Bedrock answer.
func FuzzServeHTTP(f *testing.F) {
	f.Add(uint8(1), "/model/anthropic.claude-3-haiku-20240307-v1%3A0/invoke-with-response-stream", []byte(invokeCases[0].body), uint8(3), "")
	f.Add(uint8(1), "/model/amazon.nova-lite-v1%3A0/converse-stream", []byte(`{"messages":[]}`), uint8(2), "5ms")
	f.Add(uint8(1), "/model/x/count-tokens", []byte(`{"input":{"invokeModel":{"body":"eyJwcm9tcHQiOiJhIGIifQ=="}}}`), uint8(0), "")
	f.Add(uint8(1), "/async-invoke", []byte(`{"modelId":"m","modelInput":{},"outputDataConfig":{}}`), uint8(0), "")
	f.Add(uint8(0), "/async-invoke/arn%3Ax", []byte(nil), uint8(0), "")
	f.Add(uint8(0), "/foundation-models/%zz", []byte(nil), uint8(0), "")
	f.Add(uint8(0), "/?Action=GetCallerIdentity&X-Amz-Algorithm=AWS4-HMAC-SHA256", []byte(nil), uint8(0), "")
	f.Add(uint8(1), "/", []byte("Action=GetCallerIdentity&Version=2011-06-15"), uint8(0), "")
	s := New(Options{})
	methods := []string{"GET", "POST", "PUT"}
	f.Fuzz(func(t *testing.T, m uint8, path string, body []byte, output uint8, delay string) {
		if d, err := time.ParseDuration(delay); err == nil && d > 0 {
			t.Skip() // keep the fuzzer fast
		}
		method := methods[int(m)%len(methods)]
		req := httptest.NewRequest(method, "/", strings.NewReader(string(body)))
		req.RequestURI = "/" + strings.TrimPrefix(path, "/") // the raw target, unparsed
		req.Header.Set(HeaderOutputTokens, strconv.Itoa(int(output)))
		req.Header.Set(HeaderEventDelay, delay)
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		if w.Code == 0 || w.Header().Get("X-Amzn-Requestid") == "" {
			t.Fatalf("%s %s: code %d headers %v", method, path, w.Code, w.Header())
		}
		// The STS stand-in (path "/") answers errors in the AWS Query XML shape instead.
		if w.Code != http.StatusOK && w.Header().Get("X-Amzn-Errortype") == "" && !strings.HasPrefix(w.Header().Get("Content-Type"), "text/xml") {
			t.Fatalf("%s %s: error %d without X-Amzn-ErrorType", method, path, w.Code)
		}
		s.Reset()
	})
}
