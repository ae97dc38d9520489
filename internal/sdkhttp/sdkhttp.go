// Package sdkhttp owns the HTTP client wrapper the gateway's AWS SDK clients
// (Organizations, the Bedrock control plane) and the tests' SDK clients share.
package sdkhttp

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
)

// Doer is what an AWS SDK client sends requests through (its HTTPClient).
type Doer interface {
	Do(*http.Request) (*http.Response, error)
}

// Buffering returns a Doer that sends each request body from memory. It works
// around a race between the Go SDK and net/http: the SDK hands the transport a
// body it closes as soon as response headers arrive, and a server that answers
// before the transport's final read of the body (a fast local endpoint such as
// the simulator) makes the transport drop the connection under the response
// still being read. Buffered, headers and body go out in one flush from a
// reader the SDK does not close. The bodies these clients send are small.
// inner nil means http.DefaultClient.
func Buffering(inner Doer) Doer {
	if inner == nil {
		inner = http.DefaultClient
	}
	return buffering{inner}
}

type buffering struct{ inner Doer }

func (c buffering) Do(req *http.Request) (*http.Response, error) {
	if req.Body != nil && req.Body != http.NoBody {
		b, err := io.ReadAll(req.Body)
		_ = req.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("buffering request body: %w", err)
		}
		req = req.Clone(req.Context())
		req.Body = io.NopCloser(bytes.NewReader(b))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
		req.ContentLength = int64(len(b))
	}
	return c.inner.Do(req)
}
