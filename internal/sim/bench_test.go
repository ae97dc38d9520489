package sim

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
)

func benchServe(b *testing.B, path, body string) {
	s := New(Options{})
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest("POST", path, strings.NewReader(body))
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		if w.Code != 200 {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
		_, _ = io.Copy(io.Discard, w.Body)
		if len(s.observed) > 1000 {
			s.Reset()
		}
	}
}

func BenchmarkConverse(b *testing.B) {
	benchServe(b, "/model/amazon.nova-lite-v1%3A0/converse", `{"messages":[{"role":"user","content":[{"text":"hello there"}]}]}`)
}

func BenchmarkConverseStream(b *testing.B) {
	benchServe(b, "/model/amazon.nova-lite-v1%3A0/converse-stream", `{"messages":[{"role":"user","content":[{"text":"hello there"}]}]}`)
}

func BenchmarkInvokeModelWithResponseStream(b *testing.B) {
	benchServe(b, "/model/anthropic.claude-3-haiku-20240307-v1%3A0/invoke-with-response-stream", invokeCases[0].body)
}
