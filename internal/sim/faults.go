package sim

import (
	"net"
	"net/http"
	"slices"

	"github.com/bedrock-gateway/gateway/internal/bedrock"
)

// The faults the simulator injects (X-Sim-Fault, Options.Fault).
const (
	FaultThrottle    = "throttle"    // 429 ThrottlingException
	FaultInternal    = "internal"    // 500 InternalServerException
	FaultUnavailable = "unavailable" // 503 ServiceUnavailableException
	FaultTimeout     = "timeout"     // 408 ModelTimeoutException
	FaultModelError  = "model-error" // 424 ModelErrorException
	FaultMidstream   = "midstream"   // streams: 200, a few events, an exception frame; otherwise as internal
	FaultReset       = "reset"       // the connection is dropped without a response (streams: after a few events)
)

var faultNames = []string{
	FaultThrottle, FaultInternal, FaultUnavailable, FaultTimeout, FaultModelError,
	FaultMidstream, FaultReset,
}

// Faults lists the fault names.
func Faults() []string { return slices.Clone(faultNames) }

// ValidFault reports whether name is a fault the simulator knows.
func ValidFault(name string) bool { return slices.Contains(faultNames, name) }

// faultError is the error response a fault produces before any response headers.
func faultError(fault string) *bedrock.Error {
	switch fault {
	case FaultThrottle:
		return bedrock.Throttling("Too many requests, please wait before trying again.", 0)
	case FaultUnavailable:
		return bedrock.Unavailable("Bedrock is unable to process your request.")
	case FaultTimeout:
		return bedrock.ModelTimeout("Model has timed out in processing the request. Try your request again.")
	case FaultModelError:
		return &bedrock.Error{Type: "ModelErrorException", Status: 424, Message: "The model produced an error while processing the request."}
	}
	return bedrock.Internal("The server encountered an internal error while processing the request.")
}

// midstreamError is the exception a midstream fault sends as an event-stream frame.
func midstreamError() *bedrock.Error {
	return bedrock.Internal("The server encountered an internal error while processing the request.")
}

// failFault answers a fault that strikes before any response headers.
func (c *call) failFault(fault string) {
	if fault == FaultReset {
		c.abort()
		return
	}
	c.fail(faultError(fault))
}

// abort drops the connection without a response: an HTTP/1 connection is hijacked
// and closed with a TCP reset when possible; otherwise (HTTP/2, or headers already
// sent) the handler aborts, which makes the server reset the stream or close the
// connection without ending the body.
func (c *call) abort() {
	if c.r.ProtoMajor == 1 && !c.wroteHeader {
		if conn, _, err := http.NewResponseController(c.w).Hijack(); err == nil {
			raw := conn
			if nc, ok := conn.(interface{ NetConn() net.Conn }); ok {
				raw = nc.NetConn()
			}
			if tc, ok := raw.(*net.TCPConn); ok {
				_ = tc.SetLinger(0)
			}
			_ = conn.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}
