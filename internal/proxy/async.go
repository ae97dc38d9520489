package proxy

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"time"

	"github.com/bedrock-gateway/gateway/internal/bedrock"
)

// asyncModelID reads modelId from a StartAsyncInvoke body.
func asyncModelID(body []byte) (string, error) {
	var req struct {
		ModelID string `json:"modelId"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return "", bedrock.Validation("The request body is not valid JSON.")
	}
	if req.ModelID == "" {
		return "", bedrock.Validation("1 validation error detected: Value null at 'modelId' failed to satisfy constraint: Member must not be null")
	}
	return req.ModelID, nil
}

// rewriteAsyncModelID substitutes the entitlement's upstream model into the body,
// keeping every other member as sent.
func rewriteAsyncModelID(body []byte, model string) ([]byte, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, bedrock.Validation("The request body is not valid JSON.")
	}
	id, err := json.Marshal(model)
	if err != nil {
		return nil, err
	}
	m["modelId"] = id
	return json.Marshal(m)
}

// AsyncOwners remembers who started each asynchronous invocation. Upstream,
// every invocation belongs to the hub; this is what keeps members apart.
type AsyncOwners interface {
	Record(ctx context.Context, arn, account, entitlement string) error
	Owner(ctx context.Context, arn string) (account, entitlement string, ok bool, err error)
	Owners(ctx context.Context, arns []string) (map[string]string, error)
}

// checkAsyncOwner refuses GetAsyncInvoke of an invocation the caller did not start.
func (h *Handler) checkAsyncOwner(ctx context.Context, c *call) error {
	if h.opts.AsyncOwners == nil || c.route.Op != bedrock.OpGetAsyncInvoke {
		return nil
	}
	owner, _, ok, err := h.opts.AsyncOwners.Owner(ctx, c.route.InvocationARN)
	if err != nil {
		h.opts.Metrics.StoreError("async_owner")
		h.opts.Logger.Error("reading async invocation owner", "request_id", c.requestID, "error", err)
		return bedrock.Unavailable("The gateway could not check who owns this invocation. Try again.")
	}
	if !ok || owner != c.account.ID {
		return bedrock.AccessDenied(deniedMessage)
	}
	return nil
}

// maxAsyncBody bounds the async responses the gateway reads to rewrite.
const maxAsyncBody = 8 << 20

// asyncResponse handles the 200 answer of StartAsyncInvoke (records the owner)
// and ListAsyncInvokes (keeps only the caller's invocations). It reports
// whether it wrote the response.
func (h *Handler) asyncResponse(ctx context.Context, w *responseWriter, resp *http.Response, c *call) (bool, error) {
	if h.opts.AsyncOwners == nil || (c.route.Op != bedrock.OpStartAsyncInvoke && c.route.Op != bedrock.OpListAsyncInvokes) {
		return false, nil
	}
	t := time.Now()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAsyncBody+1))
	c.upstream += time.Since(t)
	if err != nil || len(body) > maxAsyncBody {
		return false, bedrock.Unavailable("The upstream answer could not be read.")
	}
	switch c.route.Op {
	case bedrock.OpStartAsyncInvoke:
		var out struct {
			InvocationArn string `json:"invocationArn"`
		}
		if json.Unmarshal(body, &out) == nil && out.InvocationArn != "" {
			if err := h.opts.AsyncOwners.Record(ctx, out.InvocationArn, c.account.ID, c.decision.Entitlement.Name); err != nil {
				// The invocation runs, but its owner could not be noted: say so
				// rather than hand out an ARN the caller cannot read back.
				h.opts.Metrics.StoreError("async_owner")
				h.opts.Logger.Error("recording async invocation owner", "request_id", c.requestID, "arn", out.InvocationArn, "error", err)
				return false, bedrock.Unavailable("The invocation was started but the gateway could not record its owner. Try again.")
			}
		}
	case bedrock.OpListAsyncInvokes:
		filtered, err := h.filterAsyncList(ctx, body, c.account.ID)
		if err != nil {
			h.opts.Metrics.StoreError("async_owner")
			h.opts.Logger.Error("filtering async invocations", "request_id", c.requestID, "error", err)
			return false, bedrock.Unavailable("The gateway could not check who owns these invocations. Try again.")
		}
		body = filtered
	}
	w.Header().Del("Content-Length")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
	return true, nil
}

// filterAsyncList keeps the summaries of invocations the account started,
// leaving every other member of the answer (nextToken) as it was. A page may so
// come back shorter than maxResults; nextToken still pages on.
func (h *Handler) filterAsyncList(ctx context.Context, body []byte, account string) ([]byte, error) {
	var page map[string]json.RawMessage
	if err := json.Unmarshal(body, &page); err != nil {
		return nil, err
	}
	var summaries []json.RawMessage
	if raw, ok := page["asyncInvokeSummaries"]; ok {
		if err := json.Unmarshal(raw, &summaries); err != nil {
			return nil, err
		}
	}
	arns := make([]string, len(summaries))
	for i, s := range summaries {
		var v struct {
			InvocationArn string `json:"invocationArn"`
		}
		_ = json.Unmarshal(s, &v)
		arns[i] = v.InvocationArn
	}
	owners, err := h.opts.AsyncOwners.Owners(ctx, arns)
	if err != nil {
		return nil, err
	}
	kept := make([]json.RawMessage, 0, len(summaries))
	for i, s := range summaries {
		if arns[i] != "" && owners[arns[i]] == account {
			kept = append(kept, s)
		}
	}
	raw, err := json.Marshal(kept)
	if err != nil {
		return nil, err
	}
	page["asyncInvokeSummaries"] = raw
	return json.Marshal(page)
}
