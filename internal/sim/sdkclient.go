package sim

import (
	"net/http"

	"github.com/bedrock-gateway/gateway/internal/sdkhttp"
)

// HTTPDoer is the HTTP client interface the AWS SDK accepts (aws.HTTPClient).
type HTTPDoer interface {
	Do(*http.Request) (*http.Response, error)
}

// SDKHTTPClient wraps an HTTP client for AWS SDK clients that talk to a fast
// local server such as the simulator: bodies go out from memory
// (sdkhttp.Buffering explains the race it avoids). inner nil means
// http.DefaultClient.
func SDKHTTPClient(inner HTTPDoer) HTTPDoer { return sdkhttp.Buffering(inner) }
