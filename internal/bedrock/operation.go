// Package bedrock owns the Bedrock Runtime wire protocol as the gateway speaks it:
// operations and their routes, model identifiers, Bedrock-shaped errors, event
// stream scanning, usage extraction and token estimates.
package bedrock

import (
	"net/url"
	"strings"
)

// Operation identifies one Bedrock API operation the gateway routes.
type Operation uint8

// The operations, runtime first. OpUnknown is the zero value.
const (
	OpUnknown Operation = iota
	OpInvokeModel
	OpInvokeModelWithResponseStream
	OpConverse
	OpConverseStream
	OpCountTokens
	OpApplyGuardrail
	OpStartAsyncInvoke
	OpGetAsyncInvoke
	OpListAsyncInvokes
	OpInvokeModelWithBidirectionalStream
	OpListFoundationModels
	OpGetFoundationModel
	OpInvokeGuardrailChecks
	opCount
)

var operationNames = [opCount]string{
	OpUnknown:                            "Unknown",
	OpInvokeModel:                        "InvokeModel",
	OpInvokeModelWithResponseStream:      "InvokeModelWithResponseStream",
	OpConverse:                           "Converse",
	OpConverseStream:                     "ConverseStream",
	OpCountTokens:                        "CountTokens",
	OpApplyGuardrail:                     "ApplyGuardrail",
	OpStartAsyncInvoke:                   "StartAsyncInvoke",
	OpGetAsyncInvoke:                     "GetAsyncInvoke",
	OpListAsyncInvokes:                   "ListAsyncInvokes",
	OpInvokeModelWithBidirectionalStream: "InvokeModelWithBidirectionalStream",
	OpListFoundationModels:               "ListFoundationModels",
	OpGetFoundationModel:                 "GetFoundationModel",
	OpInvokeGuardrailChecks:              "InvokeGuardrailChecks",
}

// String returns the operation's API name, e.g. "ConverseStream".
func (o Operation) String() string {
	if o >= opCount {
		return "Unknown"
	}
	return operationNames[o]
}

// ParseOperation maps an API name to an Operation; ok is false for unknown names.
func ParseOperation(name string) (Operation, bool) {
	for i := OpInvokeModel; i < opCount; i++ {
		if operationNames[i] == name {
			return i, true
		}
	}
	return OpUnknown, false
}

// RuntimeOperations lists the data-plane operations an entitlement can allow.
func RuntimeOperations() []Operation {
	return []Operation{
		OpInvokeModel, OpInvokeModelWithResponseStream, OpConverse, OpConverseStream,
		OpCountTokens, OpApplyGuardrail, OpStartAsyncInvoke, OpGetAsyncInvoke,
		OpListAsyncInvokes, OpInvokeModelWithBidirectionalStream, OpInvokeGuardrailChecks,
	}
}

// HasModel reports whether the operation's path names a model.
func (o Operation) HasModel() bool {
	switch o {
	case OpInvokeModel, OpInvokeModelWithResponseStream, OpConverse, OpConverseStream,
		OpCountTokens, OpInvokeModelWithBidirectionalStream, OpGetFoundationModel:
		return true
	}
	return false
}

// Streaming reports whether the response is an event stream.
func (o Operation) Streaming() bool {
	return o == OpInvokeModelWithResponseStream || o == OpConverseStream ||
		o == OpInvokeModelWithBidirectionalStream
}

// Generates reports whether the operation consumes model tokens (and so is metered
// and reserved against caps).
func (o Operation) Generates() bool {
	switch o {
	case OpInvokeModel, OpInvokeModelWithResponseStream, OpConverse, OpConverseStream,
		OpInvokeModelWithBidirectionalStream:
		return true
	}
	return false
}

// Route is a parsed request target.
type Route struct {
	Op Operation
	// ModelID is the model label decoded exactly once (empty when the operation has none).
	ModelID string
	// GuardrailID and GuardrailVersion are decoded labels of ApplyGuardrail.
	GuardrailID      string
	GuardrailVersion string
	// InvocationARN is the decoded label of GetAsyncInvoke.
	InvocationARN string
}

// Path suffixes after /model/{modelId}.
var modelSuffixes = [...]struct {
	suffix string
	op     Operation
}{
	{"/invoke", OpInvokeModel},
	{"/invoke-with-response-stream", OpInvokeModelWithResponseStream},
	{"/converse", OpConverse},
	{"/converse-stream", OpConverseStream},
	{"/count-tokens", OpCountTokens},
	{"/invoke-with-bidirectional-stream", OpInvokeModelWithBidirectionalStream},
}

// ParseRoute maps a method and the raw (still percent-encoded) path, without the
// query, to a Route. Labels are decoded exactly once. It returns an error of type
// *Error (UnknownOperationException or ValidationException) when nothing matches.
func ParseRoute(method, rawPath string) (Route, error) {
	switch {
	case strings.HasPrefix(rawPath, "/model/"):
		rest := rawPath[len("/model/"):]
		slash := strings.IndexByte(rest, '/')
		if slash <= 0 || method != "POST" {
			return Route{}, unknownOperation()
		}
		label, suffix := rest[:slash], rest[slash:]
		for _, s := range modelSuffixes {
			if s.suffix == suffix {
				id, err := decodeLabel(label)
				if err != nil {
					return Route{}, err
				}
				return Route{Op: s.op, ModelID: id}, nil
			}
		}
	case rawPath == "/async-invoke":
		switch method {
		case "POST":
			return Route{Op: OpStartAsyncInvoke}, nil
		case "GET":
			return Route{Op: OpListAsyncInvokes}, nil
		}
	case strings.HasPrefix(rawPath, "/async-invoke/"):
		label := rawPath[len("/async-invoke/"):]
		if method != "GET" || label == "" || strings.IndexByte(label, '/') >= 0 {
			return Route{}, unknownOperation()
		}
		arn, err := decodeLabel(label)
		if err != nil {
			return Route{}, err
		}
		return Route{Op: OpGetAsyncInvoke, InvocationARN: arn}, nil
	case strings.HasPrefix(rawPath, "/guardrail/"):
		// /guardrail/{id}/version/{version}/apply
		parts := strings.Split(rawPath[len("/guardrail/"):], "/")
		if method != "POST" || len(parts) != 4 || parts[1] != "version" || parts[3] != "apply" || parts[0] == "" || parts[2] == "" {
			return Route{}, unknownOperation()
		}
		id, err := decodeLabel(parts[0])
		if err != nil {
			return Route{}, err
		}
		ver, err := decodeLabel(parts[2])
		if err != nil {
			return Route{}, err
		}
		return Route{Op: OpApplyGuardrail, GuardrailID: id, GuardrailVersion: ver}, nil
	case rawPath == "/guardrail-checks/invoke":
		if method == "POST" {
			return Route{Op: OpInvokeGuardrailChecks}, nil
		}
	case rawPath == "/foundation-models":
		if method == "GET" {
			return Route{Op: OpListFoundationModels}, nil
		}
	case strings.HasPrefix(rawPath, "/foundation-models/"):
		label := rawPath[len("/foundation-models/"):]
		if method != "GET" || label == "" || strings.IndexByte(label, '/') >= 0 {
			return Route{}, unknownOperation()
		}
		id, err := decodeLabel(label)
		if err != nil {
			return Route{}, err
		}
		return Route{Op: OpGetFoundationModel, ModelID: id}, nil
	}
	return Route{}, unknownOperation()
}

func decodeLabel(label string) (string, error) {
	s, err := url.PathUnescape(label)
	if err != nil || s == "" {
		return "", Validation("The path contains a malformed percent-encoded label.")
	}
	return s, nil
}

func unknownOperation() *Error {
	return &Error{Type: "UnknownOperationException", Status: 404, Message: "The requested operation is not recognized by the service."}
}

// EscapeLabel percent-encodes a path label the way the AWS SDKs do: every byte
// except A-Z a-z 0-9 - . _ ~ is escaped.
func EscapeLabel(s string) string {
	const hex = "0123456789ABCDEF"
	n := 0
	for i := 0; i < len(s); i++ {
		if !unreserved(s[i]) {
			n++
		}
	}
	if n == 0 {
		return s
	}
	b := make([]byte, 0, len(s)+2*n)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if unreserved(c) {
			b = append(b, c)
		} else {
			b = append(b, '%', hex[c>>4], hex[c&15])
		}
	}
	return string(b)
}

func unreserved(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~'
}

// ModelPath returns the raw (single-encoded) path for a model operation with the
// given model ID; it is what the gateway sends upstream.
func ModelPath(op Operation, modelID string) string {
	for _, s := range modelSuffixes {
		if s.op == op {
			return "/model/" + EscapeLabel(modelID) + s.suffix
		}
	}
	return ""
}

// queryParams lists the query parameters each operation defines (Bedrock
// Runtime's HTTP bindings); every other operation defines none.
var queryParams = map[Operation][]string{
	OpListAsyncInvokes: {"maxResults", "nextToken", "sortBy", "sortOrder", "statusEquals", "submitTimeAfter", "submitTimeBefore"},
}

// UpstreamQuery returns the query string to send upstream for op: only the
// parameters the operation defines, in a canonical order. Anything else a
// caller puts in the query (presigned-URL credentials such as
// X-Amz-Credential and X-Amz-Security-Token, or parameters Bedrock might
// interpret one day) never reaches the upstream, where it would travel next to
// the hub's signature. A query that is not well-formed is a ValidationException.
func UpstreamQuery(op Operation, rawQuery string) (string, error) {
	if rawQuery == "" {
		return "", nil
	}
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return "", Validation("The query string is malformed.")
	}
	allowed := queryParams[op]
	if len(allowed) == 0 {
		return "", nil
	}
	out := make(url.Values, len(allowed))
	for _, k := range allowed {
		if v, ok := q[k]; ok {
			out[k] = v
		}
	}
	return out.Encode(), nil
}
