package proxy

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/bedrock-gateway/gateway/internal/authz"
	"github.com/bedrock-gateway/gateway/internal/bedrock"
	"github.com/bedrock-gateway/gateway/internal/state"
)

// authorizeAsyncStart authorizes StartAsyncInvoke: the body is parsed
// strictly, the model resolved to an entitlement, the output location checked
// against the entitlement's async_output_prefixes, and the forwarded body
// rebuilt from what was checked (upstream model, per-account token).
func (h *Handler) authorizeAsyncStart(c *call, snap *authz.Snapshot) error {
	req, err := parseAsyncStart(c.body)
	if err != nil {
		return err
	}
	d, err := snap.AuthorizeAs(c.account.ID, c.principal(), c.route.Op, req.ModelID)
	if err != nil {
		return err
	}
	// Bedrock writes the output with the hub's identity: the member may only
	// name a location the entitlement allows it. The caller is entitled, so
	// saying why names nothing it could not see.
	if len(d.Entitlement.AsyncOutputPrefixes) == 0 {
		c.denyReason = "async_output_not_allowed"
		return bedrock.AccessDenied("This entitlement allows no asynchronous output location (async_output_prefixes is not set).")
	}
	if !state.AsyncOutputAllowed(d.Entitlement.AsyncOutputPrefixes, c.account.ID, req.S3URI) {
		c.denyReason = "async_output_not_allowed"
		return bedrock.AccessDenied("The output location is not one this entitlement allows for your account.")
	}
	body, err := req.upstreamBody(d.UpstreamModel, c.account.ID)
	if err != nil {
		return fmt.Errorf("rebuilding the StartAsyncInvoke body: %w", err)
	}
	c.body = body
	c.bodyHash = sha256.Sum256(body)
	c.decision = d
	return nil
}

// AsyncOwners remembers who started each asynchronous invocation. Upstream,
// every invocation belongs to the hub; this is what keeps members apart.
type AsyncOwners interface {
	// Record notes the owner unless one is recorded already, and returns the
	// owning account.
	Record(ctx context.Context, arn, account, entitlement string) (owner string, err error)
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
		c.denyReason = "not_invocation_owner"
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
			owner, err := h.opts.AsyncOwners.Record(ctx, out.InvocationArn, c.account.ID, c.decision.Entitlement.Name)
			if err != nil {
				// The invocation runs, but its owner could not be noted: say so
				// rather than hand out an ARN the caller cannot read back.
				h.opts.Metrics.StoreError("async_owner")
				h.opts.Logger.Error("recording async invocation owner", "request_id", c.requestID, "arn", out.InvocationArn, "error", err)
				return false, bedrock.Unavailable("The invocation was started but the gateway could not record its owner. Try again.")
			}
			if owner != c.account.ID {
				// Upstream tokens are derived per account, so this takes an
				// ARN collision; the first owner keeps the invocation.
				h.opts.Logger.Warn("async invocation already owned by another account", "request_id", c.requestID, "arn", out.InvocationArn, "account", c.account.ID)
				return false, bedrock.AccessDenied(deniedMessage)
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
