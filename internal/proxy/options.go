package proxy

import (
	"net/http"

	"github.com/bedrock-gateway/gateway/internal/bedrock"
)

// inspect reads what the request chooses beyond the model: the service tier,
// latency mode and guardrails named in its headers and, for Converse and
// ConverseStream, its body (read in the same walk that estimates its tokens),
// and refuses any choice the entitlement does not allow with the one
// AccessDeniedException every denial gets. It runs before the reservation,
// so a refused call costs nothing.
func (h *Handler) inspect(r *http.Request, c *call) error {
	opts, err := bedrock.HeaderOptions(r.Header)
	if err != nil {
		return err
	}
	e := c.decision.Entitlement
	if c.route.Op.Generates() {
		mode, perr := bedrock.ParseEstimateMode(e.Limits.Estimate)
		if perr != nil {
			mode = bedrock.EstimateTypical
		}
		est, body, err := bedrock.InspectRequest(c.route.Op, c.decision.UpstreamModel, c.body,
			bedrock.EstimateOptions{Mode: mode, DefaultMaxOutput: h.opts.DefaultMaxOutput, MaxOutput: h.opts.MaxOutput})
		if err != nil {
			return err
		}
		c.estimate = est
		if err := opts.Merge(body); err != nil {
			return err
		}
	}
	if c.route.Op == bedrock.OpApplyGuardrail {
		opts.Guardrails = append(opts.Guardrails, c.route.GuardrailID)
	}
	if !e.AllowsOptions(opts) {
		h.opts.Logger.Info("request option not allowed by the entitlement", "request_id", c.requestID,
			"entitlement", e.Name, "account", c.account.ID, "service_tier", opts.ServiceTier,
			"latency", opts.Latency, "guardrails", opts.Guardrails)
		c.denyReason = "option_not_allowed"
		return bedrock.AccessDenied(deniedMessage)
	}
	c.tier = opts.PricingTier()
	return nil
}
