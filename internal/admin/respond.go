package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"strings"
	"syscall"

	"github.com/redis/go-redis/v9"

	"github.com/bedrock-gateway/gateway/internal/state"
	"github.com/bedrock-gateway/gateway/internal/store"
)

// Error codes of the admin API (the "code" member of an error body).
const (
	codeBadRequest           = "bad_request"
	codeValidationFailed     = "validation_failed"
	codeNotFound             = "not_found"
	codeConflict             = "conflict"
	codeUnauthorized         = "unauthorized"
	codeForbidden            = "forbidden"
	codeMethodNotAllowed     = "method_not_allowed"
	codeUnsupportedMediaType = "unsupported_media_type"
	codeNotImplemented       = "not_implemented"
	codeInternal             = "internal"
	codeStoreWiped           = "store_wiped"
	codeStoreUnavailable     = "store_unavailable"
)

// apiError is an error answered to the admin client. Message and Details go to
// the client; Err only to the log.
type apiError struct {
	Status  int
	Code    string
	Message string
	Details any
	Err     error
}

func (e *apiError) Error() string {
	if e.Err != nil {
		return e.Code + ": " + e.Message + ": " + e.Err.Error()
	}
	return e.Code + ": " + e.Message
}

func (e *apiError) Unwrap() error { return e.Err }

func errBadRequest(format string, args ...any) *apiError {
	return &apiError{Status: http.StatusBadRequest, Code: codeBadRequest, Message: fmt.Sprintf(format, args...)}
}

func errNotFound(format string, args ...any) *apiError {
	return &apiError{Status: http.StatusNotFound, Code: codeNotFound, Message: fmt.Sprintf(format, args...)}
}

func errConflict(format string, args ...any) *apiError {
	return &apiError{Status: http.StatusConflict, Code: codeConflict, Message: fmt.Sprintf(format, args...)}
}

// problem is one entry of an error's details.
type problem struct {
	Line    int    `json:"line,omitempty"`
	Index   *int   `json:"index,omitempty"`
	Value   string `json:"value,omitempty"`
	Problem string `json:"problem"`
}

// errValidation turns the joined errors of state.Validate into a 400 listing
// every problem.
func errValidation(what string, err error) *apiError {
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	} else {
		errs = []error{err}
	}
	details := make([]problem, 0, len(errs))
	for _, e := range errs {
		details = append(details, problem{Problem: e.Error()})
	}
	msg := fmt.Sprintf("%s: %s", what, details[0].Problem)
	if len(details) > 1 {
		msg = fmt.Sprintf("%s: %d problems, the first: %s", what, len(details), details[0].Problem)
	}
	return &apiError{Status: http.StatusBadRequest, Code: codeValidationFailed, Message: msg, Details: details}
}

type errorBody struct {
	Error errorPayload `json:"error"`
}

type errorPayload struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Details any    `json:"details,omitempty"`
}

func (s *server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var ae *apiError
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &ae):
	case errors.As(err, &tooLarge):
		ae = &apiError{Status: http.StatusRequestEntityTooLarge, Code: codeBadRequest,
			Message: fmt.Sprintf("request body is larger than %d bytes", tooLarge.Limit)}
	case errors.Is(err, store.ErrConflict):
		ae = &apiError{Status: http.StatusConflict, Code: codeConflict,
			Message: "too many concurrent changes; retry", Err: err}
	case errors.Is(err, store.ErrWiped):
		ae = &apiError{Status: http.StatusConflict, Code: codeStoreWiped, Message: store.ErrWiped.Error(), Err: err}
	case errors.Is(err, context.Canceled):
		return // the client is gone
	case storeUnreachable(err):
		ae = &apiError{Status: http.StatusServiceUnavailable, Code: codeStoreUnavailable,
			Message: "state store unreachable: " + unreachableCause(err), Err: err}
	default:
		ae = &apiError{Status: http.StatusInternalServerError, Code: codeInternal,
			Message: "internal error; see the gateway log", Err: err}
	}
	if ae.Status >= 500 {
		s.log.ErrorContext(r.Context(), "admin request failed", "method", r.Method, "path", r.URL.Path,
			"actor", actor(r), "status", ae.Status, "err", err)
	}
	writeJSON(w, ae.Status, errorBody{Error: errorPayload{Code: ae.Code, Message: ae.Message, Details: ae.Details}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		status = http.StatusInternalServerError
		buf.Reset()
		buf.WriteString(`{"error":{"code":"internal","message":"encoding the response failed"}}` + "\n")
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// mediaType returns the request's media type, lowercased, without parameters;
// empty when there is no Content-Type.
func mediaType(r *http.Request) (string, error) {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return "", nil
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return "", &apiError{Status: http.StatusUnsupportedMediaType, Code: codeUnsupportedMediaType,
			Message: fmt.Sprintf("malformed Content-Type %q", ct)}
	}
	return strings.ToLower(mt), nil
}

func unsupported(mt string, want string) *apiError {
	return &apiError{Status: http.StatusUnsupportedMediaType, Code: codeUnsupportedMediaType,
		Message: fmt.Sprintf("Content-Type %s is not supported here; use %s", mt, want)}
}

// requireJSON accepts application/json (and any +json type) or no Content-Type.
func requireJSON(r *http.Request) error {
	mt, err := mediaType(r)
	if err != nil {
		return err
	}
	if mt == "" || mt == "application/json" || strings.HasSuffix(mt, "+json") {
		return nil
	}
	return unsupported(mt, "application/json")
}

// readBody reads the whole body, bounded by limit.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, err
		}
		return nil, errBadRequest("reading the request body: %v", err)
	}
	return data, nil
}

// decodeJSON decodes exactly one JSON value into v, rejecting unknown fields.
func decodeJSON(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return errBadRequest("the request body is empty; a JSON object is required")
		}
		return errBadRequest("invalid JSON body: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errBadRequest("invalid JSON body: unexpected data after the JSON value")
	}
	return nil
}

// readJSON checks the Content-Type and decodes a bounded JSON body into v.
func readJSON(w http.ResponseWriter, r *http.Request, v any) error {
	if err := requireJSON(r); err != nil {
		return err
	}
	data, err := readBody(w, r, maxSmallBody)
	if err != nil {
		return err
	}
	return decodeJSON(data, v)
}

// validate normalizes and validates a whole state, as every mutation does
// before the store writes it.
func validate(st *state.State, what string) error {
	st.Normalize()
	if err := st.Validate(); err != nil {
		return errValidation(what, err)
	}
	return nil
}

// errUnchanged aborts an update that would change nothing, so the store writes
// no version and no audit entry for it.
var errUnchanged = errors.New("admin: nothing to change")

// update runs one mutation through the store under the request's actor, then
// waits for this replica to serve the new version. It reports changed=false
// when fn returned errUnchanged.
func (s *server) update(r *http.Request, action string, fn func(*state.State) error) (version uint64, changed bool, err error) {
	ctx := r.Context()
	version, err = s.store.Update(ctx, actor(r), action, fn)
	if errors.Is(err, errUnchanged) {
		return version, false, nil // Update returns the current version with fn's error
	}
	if err != nil {
		var ae *apiError
		if errors.As(err, &ae) {
			return 0, false, ae
		}
		if errors.Is(err, store.ErrInvalid) {
			return 0, false, &apiError{Status: http.StatusBadRequest, Code: codeValidationFailed, Message: err.Error()}
		}
		return 0, false, fmt.Errorf("%s: %w", action, err)
	}
	s.log.InfoContext(ctx, "admin change", "actor", actor(r), "action", action, "version", version)
	if err := s.waitApplied(ctx, version); err != nil {
		return version, true, err
	}
	return version, true, nil
}

func (s *server) waitApplied(ctx context.Context, version uint64) error {
	if s.syncer == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.syncTimeout)
	defer cancel()
	if err := s.syncer.WaitVersion(ctx, version); err != nil {
		// The change is stored and every replica will pick it up; say so
		// rather than invite a retry of something already done.
		return &apiError{Status: http.StatusServiceUnavailable, Code: codeInternal,
			Message: fmt.Sprintf("the change was stored as version %d but this replica has not applied it yet; it will take effect shortly", version),
			Err:     err}
	}
	return nil
}

// load reads the current state.
func (s *server) load(ctx context.Context) (*state.State, uint64, error) {
	st, v, err := s.store.Load(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("loading state: %w", err)
	}
	return st, v, nil
}

// storeUnreachable tells a state store (Redis) that cannot be reached from
// other failures: the operator gets 503 with the cause, not "internal error".
func storeUnreachable(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, redis.ErrClosed) ||
		errors.Is(err, redis.ErrPoolTimeout) || errors.Is(err, context.DeadlineExceeded) ||
		redis.IsLoadingError(err) || redis.IsClusterDownError(err) || redis.IsTryAgainError(err) || redis.IsMasterDownError(err)
}

// unreachableCause says why the store cannot be reached: the network
// operation that failed ("dial tcp 10.0.0.5:6379: connect: connection
// refused") when there is one.
func unreachableCause(err error) string {
	var op *net.OpError
	if errors.As(err, &op) {
		return op.Error()
	}
	return err.Error()
}
