package sim

import (
	"bytes"
	"io"
	"net/http"
)

// HTTPDoer is the HTTP client interface the AWS SDK accepts (aws.HTTPClient).
type HTTPDoer interface {
	Do(*http.Request) (*http.Response, error)
}

// SDKHTTPClient wraps an HTTP client for AWS SDK clients that talk to a fast local
// server such as the simulator. It works around a race between the Go SDK and
// net/http: the SDK hands the transport a request body whose WriteTo returns io.EOF
// once the SDK has closed it, and closes it as soon as response headers arrive; a
// server that answers before the transport's final check of the body (which reads
// it once more after Content-Length bytes) makes that check fail, and the transport
// then closes the connection under the response still being read ("use of closed
// network connection" in the middle of an event stream). Buffering the body in
// memory makes net/http write headers and body in one flush, after the check, from
// a reader the SDK does not close. inner nil means http.DefaultClient.
func SDKHTTPClient(inner HTTPDoer) HTTPDoer {
	if inner == nil {
		inner = http.DefaultClient
	}
	return bufferingClient{inner}
}

type bufferingClient struct{ inner HTTPDoer }

func (c bufferingClient) Do(req *http.Request) (*http.Response, error) {
	if req.Body != nil && req.Body != http.NoBody {
		b, err := io.ReadAll(req.Body)
		_ = req.Body.Close()
		if err != nil {
			return nil, err
		}
		req = req.Clone(req.Context())
		req.Body = io.NopCloser(bytes.NewReader(b))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
		req.ContentLength = int64(len(b))
	}
	return c.inner.Do(req)
}
