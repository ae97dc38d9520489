package sim

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestSDKHTTPClient(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		_, _ = io.WriteString(w, r.Method+" "+strings.Join(r.TransferEncoding, ",")+" "+string(b))
	}))
	t.Cleanup(srv.Close)
	c := SDKHTTPClient(srv.Client())
	for _, tc := range []struct{ method, body, want string }{
		{"POST", "hello", "POST  hello"},
		{"GET", "", "GET  "},
	} {
		var body io.Reader
		if tc.body != "" {
			body = io.NopCloser(strings.NewReader(tc.body)) // not known in memory, like the SDK's
		}
		req, err := http.NewRequestWithContext(t.Context(), tc.method, srv.URL, body)
		if err != nil {
			t.Fatal(err)
		}
		req.ContentLength = int64(len(tc.body))
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(got) != tc.want {
			t.Errorf("%s: got %q, want %q", tc.method, got, tc.want)
		}
	}
}
