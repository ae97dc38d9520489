package bedrock

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestErrorShapes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err    *Error
		typ    string
		status int
		member string
	}{
		{Validation("v"), "ValidationException", 400, "validationException"},
		{AccessDenied("a"), "AccessDeniedException", 403, "accessDeniedException"},
		{Unrecognized("u"), "UnrecognizedClientException", 403, "unrecognizedClientException"},
		{BadSignature("b"), "InvalidSignatureException", 403, "invalidSignatureException"},
		{QuotaExceeded("q"), "ServiceQuotaExceededException", 400, "serviceQuotaExceededException"},
		{Unavailable("s"), "ServiceUnavailableException", 503, "serviceUnavailableException"},
		{Internal("i"), "InternalServerException", 500, "internalServerException"},
		{ModelTimeout("m"), "ModelTimeoutException", 408, "modelTimeoutException"},
		{NotFound("n"), "ResourceNotFoundException", 404, "resourceNotFoundException"},
		{Throttling("t", time.Second), "ThrottlingException", 429, "throttlingException"},
	}
	for _, tt := range tests {
		if tt.err.Type != tt.typ || tt.err.Status != tt.status || tt.err.StreamMemberName() != tt.member {
			t.Errorf("%+v: want %s %d %s", tt.err, tt.typ, tt.status, tt.member)
		}
		if tt.err.Error() != tt.typ+": "+tt.err.Message {
			t.Errorf("Error() = %q", tt.err.Error())
		}
	}
	if LowerCamel("") != "" || LowerCamel("Éclair") != "éclair" {
		t.Error("LowerCamel edge cases")
	}
}

func TestWriteError(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err        *Error
		requestID  string
		retryAfter string
	}{
		{Throttling(`Too many "requests"`, 1500*time.Millisecond), "req-1", "2"},
		{QuotaExceeded("Monthly cap spent."), "", ""},
	}
	for _, tt := range tests {
		rec := httptest.NewRecorder()
		WriteError(rec, tt.requestID, tt.err)
		res := rec.Result()
		if res.StatusCode != tt.err.Status {
			t.Errorf("status %d", res.StatusCode)
		}
		h := res.Header
		if h.Get("X-Amzn-Errortype") != tt.err.Type || h.Get("Content-Type") != "application/json" ||
			h.Get("X-Amzn-Requestid") != tt.requestID || h.Get("Retry-After") != tt.retryAfter {
			t.Errorf("headers %v", h)
		}
		if _, err := http.ParseTime(h.Get("Date")); err != nil {
			t.Errorf("Date %q: %v", h.Get("Date"), err)
		}
		var body struct{ Message string }
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body.Message != tt.err.Message {
			t.Errorf("body %s: %v", rec.Body.Bytes(), err)
		}
		if h.Get("Content-Length") != "" && h.Get("Content-Length") != itoa(rec.Body.Len()) {
			t.Errorf("Content-Length %s for %d bytes", h.Get("Content-Length"), rec.Body.Len())
		}
	}
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}
