// Package sdktest holds small helpers for tests that drive the gateway or the
// simulator with the official Go SDK.
package sdktest

import (
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// WithHeaders sets request headers (key, value, key, value, ...) on every
// request the client sends, e.g. the simulator's X-Sim-* controls.
func WithHeaders(kv ...string) func(*bedrockruntime.Options) {
	return func(o *bedrockruntime.Options) {
		for i := 0; i+1 < len(kv); i += 2 {
			o.APIOptions = append(o.APIOptions, smithyhttp.SetHeaderValue(kv[i], kv[i+1]))
		}
	}
}
