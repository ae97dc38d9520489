package proxy

import (
	"net/http"
	"time"
)

// responseWriter records what the request path needs to know about the response
// (status, first-byte time, whether the client is gone) and stops writing once the
// client has gone, so the upstream can still be drained for usage.
type responseWriter struct {
	http.ResponseWriter
	flusher     http.Flusher
	status      int
	wroteHeader bool
	firstByte   time.Time
	clientGone  bool
}

func newResponseWriter(w http.ResponseWriter) *responseWriter {
	f, _ := w.(http.Flusher)
	return &responseWriter{ResponseWriter: w, flusher: f}
}

func (w *responseWriter) WriteHeader(code int) {
	if w.wroteHeader {
		return
	}
	w.wroteHeader = true
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *responseWriter) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.clientGone {
		return len(p), nil
	}
	if w.firstByte.IsZero() && len(p) > 0 {
		w.firstByte = time.Now()
	}
	n, err := w.ResponseWriter.Write(p)
	if err != nil {
		w.clientGone = true
	}
	return n, err
}

// Flush sends buffered bytes to the client now.
func (w *responseWriter) Flush() {
	if w.clientGone || w.flusher == nil {
		return
	}
	w.flusher.Flush()
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
