package bedrock

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Error is a client-facing error in Bedrock's shape. Message is sent to the client;
// it must never carry secrets or internal detail.
type Error struct {
	Type    string // shape name, e.g. "ThrottlingException"
	Status  int
	Message string
	// RetryAfter, when positive, is sent as a Retry-After header (whole seconds).
	RetryAfter time.Duration
}

func (e *Error) Error() string { return e.Type + ": " + e.Message }

// StreamMemberName is the lowerCamel member name used in `:exception-type` of an
// event-stream exception frame, e.g. "throttlingException".
func (e *Error) StreamMemberName() string { return LowerCamel(e.Type) }

// LowerCamel lower-cases the first rune of s.
func LowerCamel(s string) string {
	if s == "" {
		return s
	}
	r, n := utf8.DecodeRuneInString(s)
	return strings.ToLower(string(r)) + s[n:]
}

func newErr(typ string, status int, msg string) *Error {
	return &Error{Type: typ, Status: status, Message: msg}
}

// Constructors for the shapes the gateway produces itself.
func Validation(msg string) *Error    { return newErr("ValidationException", 400, msg) }
func AccessDenied(msg string) *Error  { return newErr("AccessDeniedException", 403, msg) }
func Unrecognized(msg string) *Error  { return newErr("UnrecognizedClientException", 403, msg) }
func BadSignature(msg string) *Error  { return newErr("InvalidSignatureException", 403, msg) }
func QuotaExceeded(msg string) *Error { return newErr("ServiceQuotaExceededException", 400, msg) }
func Unavailable(msg string) *Error   { return newErr("ServiceUnavailableException", 503, msg) }
func Internal(msg string) *Error      { return newErr("InternalServerException", 500, msg) }
func ModelTimeout(msg string) *Error  { return newErr("ModelTimeoutException", 408, msg) }
func NotFound(msg string) *Error      { return newErr("ResourceNotFoundException", 404, msg) }

// RequestTimeout: the client did not send its request body in time. SDKs
// retry this code.
func RequestTimeout(msg string) *Error { return newErr("RequestTimeoutException", 408, msg) }

// Throttling is the retryable per-minute rate limit error.
func Throttling(msg string, retryAfter time.Duration) *Error {
	e := newErr("ThrottlingException", 429, msg)
	e.RetryAfter = retryAfter
	return e
}

// WriteError writes e as a Bedrock-shaped JSON error response. The Date header is
// always set from the wall clock: the Go SDK corrects its clock skew from it.
func WriteError(w http.ResponseWriter, requestID string, e *Error) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Amzn-Errortype", e.Type)
	if requestID != "" {
		h.Set("X-Amzn-Requestid", requestID)
	}
	h.Set("Date", time.Now().UTC().Format(http.TimeFormat))
	if e.RetryAfter > 0 {
		secs := int64((e.RetryAfter + time.Second - 1) / time.Second)
		h.Set("Retry-After", strconv.FormatInt(secs, 10))
	}
	body := ErrorBody(e.Message)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(e.Status)
	_, _ = w.Write(body)
}

// ErrorBody is the JSON body `{"message":"..."}` of an error.
func ErrorBody(msg string) []byte {
	b, _ := json.Marshal(struct {
		Message string `json:"message"`
	}{msg})
	return b
}
