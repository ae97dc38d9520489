package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// APIError is an error answered by the admin API. Its text is
// "<code>: <message>" and then one indented line per detail, so printing it as
// "error: " + err shows everything the gateway said.
type APIError struct {
	Status  int
	Code    string
	Message string
	Details []map[string]any
}

func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString(e.Code + ": " + e.Message)
	for _, d := range e.Details {
		b.WriteString("\n  " + formatDetail(d))
	}
	return b.String()
}

// formatDetail renders one detail of an admin API error: a bad row
// ({line|index, value, problem}) or a reference ({id, referenced_by}).
func formatDetail(d map[string]any) string {
	var where []string
	if line, ok := d["line"].(float64); ok {
		where = append(where, fmt.Sprintf("line %d", int(line)))
	}
	if idx, ok := d["index"].(float64); ok {
		where = append(where, fmt.Sprintf("targets[%d]", int(idx)))
	}
	if v, ok := d["value"].(string); ok && v != "" {
		where = append(where, v)
	}
	if id, ok := d["id"].(string); ok {
		where = append(where, id)
	}
	msg, _ := d["problem"].(string)
	if refs, ok := d["referenced_by"].([]any); ok {
		parts := make([]string, 0, len(refs))
		for _, r := range refs {
			parts = append(parts, fmt.Sprint(r))
		}
		msg = "referenced by " + strings.Join(parts, ", ")
	}
	if msg == "" {
		b, _ := json.Marshal(d)
		msg = string(b)
	}
	if len(where) == 0 {
		return msg
	}
	return strings.Join(where, ": ") + ": " + msg
}

type client struct {
	base  string
	token string
	http  *http.Client
}

// request is one admin API call.
type request struct {
	method      string
	path        string // under the base URL, e.g. /admin/v1/entitlements
	query       url.Values
	contentType string
	body        []byte
}

// do sends the request and decodes a 2xx JSON answer into out (when not nil);
// it returns the raw body too, for --output json.
func (c *client) do(ctx context.Context, r request, out any) ([]byte, error) {
	u := c.base + r.path
	if len(r.query) > 0 {
		u += "?" + r.query.Encode()
	}
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u, body)
	if err != nil {
		return nil, fmt.Errorf("building request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json")
	if r.contentType != "" {
		req.Header.Set("Content-Type", r.contentType)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			// Most often the wrong address (or no gateway there): say which
			// URL was tried and how to point the CLI elsewhere.
			return nil, fmt.Errorf("cannot reach the admin API at %s: %w; set --admin-url or %s to the gateway's admin (ops) listener",
				c.base, op.Err, EnvAdminURL)
		}
		// The URL carries no secret; the token is only in a header.
		return nil, fmt.Errorf("calling the admin API: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return nil, fmt.Errorf("reading the admin API's answer: %w", err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, decodeError(resp.StatusCode, data)
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return nil, fmt.Errorf("decoding the admin API's answer: %w", err)
		}
	}
	return data, nil
}

func decodeError(status int, data []byte) error {
	var body struct {
		Error struct {
			Code    string           `json:"code"`
			Message string           `json:"message"`
			Details []map[string]any `json:"details"`
		} `json:"error"`
	}
	if err := json.Unmarshal(data, &body); err != nil || body.Error.Code == "" {
		msg := strings.TrimSpace(string(data))
		if len(msg) > 200 {
			msg = msg[:200] + "..."
		}
		if msg == "" {
			msg = http.StatusText(status)
		}
		return &APIError{Status: status, Code: fmt.Sprintf("http_%d", status), Message: msg}
	}
	e := &APIError{Status: status, Code: body.Error.Code, Message: body.Error.Message, Details: body.Error.Details}
	if status == http.StatusUnauthorized {
		e.Message += " (check " + EnvAdminToken + ")"
	}
	return e
}

func (c *client) getJSON(ctx context.Context, path string, query url.Values, out any) ([]byte, error) {
	return c.do(ctx, request{method: http.MethodGet, path: path, query: query}, out)
}

func (c *client) sendJSON(ctx context.Context, method, path string, query url.Values, in, out any) ([]byte, error) {
	b, err := json.Marshal(in)
	if err != nil {
		return nil, fmt.Errorf("encoding request: %w", err)
	}
	return c.do(ctx, request{method: method, path: path, query: query, contentType: "application/json", body: b}, out)
}

// printJSON writes an admin API answer as indented JSON.
func printJSON(w io.Writer, data []byte) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, data, "", "  "); err != nil {
		_, err = w.Write(data)
		return err
	}
	buf.WriteByte('\n')
	_, err := w.Write(buf.Bytes())
	return err
}

func pathEscape(s string) string { return url.PathEscape(s) }
