package proxy

import (
	"context"
	"strconv"

	"github.com/bedrock-gateway/gateway/internal/authz"
	"github.com/bedrock-gateway/gateway/internal/bedrock"
	"github.com/bedrock-gateway/gateway/internal/state"
)

// Admission: a call that generates tokens reserves its estimate before it
// goes upstream, and settles (or releases) the reservation once its usage is
// known. The proxy defines what it needs here; the composition root adapts
// the quota package's Limiter to it (internal/server/quota_adapter.go).

// Quota reserves tokens before the upstream call.
type Quota interface {
	// Reserve reserves tokens for the decision, or refuses with a *Rejection.
	Reserve(ctx context.Context, req QuotaRequest) (Ticket, error)
}

// QuotaRequest is one admission to decide.
type QuotaRequest struct {
	Decision *authz.Decision
	// Tokens is the estimate, counted per the entitlement's count rule.
	Tokens int64
	// Tier is the pricing tier the call asked for, recorded with its usage.
	Tier string
	// Principal is the caller's canonical IAM principal ARN, recorded with
	// its usage; empty for gateway-issued credentials.
	Principal string
	// Profile is the application inference profile ARN the call goes to
	// (billing.profiles), recorded beside the model; empty: the model.
	Profile string
}

// Ticket is an admitted reservation.
type Ticket interface {
	// Remaining is the smallest number of tokens left over the caller's own
	// caps (its share's and its account's), or -1 when none applies. The
	// entitlement-wide cap is never shown to a member.
	Remaining() int64
	// Settle replaces the reservation with exact usage: counted goes to the caps,
	// usage to the ledger. It must not block on the store for long.
	Settle(ctx context.Context, counted int64, usage bedrock.Usage)
	// Release cancels the reservation without charge (the upstream refused the call).
	Release(ctx context.Context)
}

// Rejection is a refusal by a cap, a rate limit or an unavailable store.
type Rejection struct {
	Err    *bedrock.Error
	Reason string // metric label: monthly_cap_entitlement, monthly_cap_share, monthly_cap_account, requests_per_minute, tokens_per_minute, store_unavailable
}

func (r *Rejection) Error() string { return r.Err.Error() }

// ReasonClientGone is the Rejection reason of a reservation abandoned by its
// caller (not counted as a rejection).
const ReasonClientGone = "client_gone"

// counted applies an entitlement's count rule to usage.
func counted(count string, input, output int64) int64 {
	switch count {
	case state.CountInput:
		return input
	case state.CountOutput:
		return output
	}
	return input + output
}

// reserve reserves the request's estimated tokens (inspect estimated them).
func (h *Handler) reserve(ctx context.Context, w *responseWriter, c *call) error {
	e := c.decision.Entitlement
	est := c.estimate
	if h.opts.Quota == nil {
		return nil
	}
	ctx, span := h.startSpan(ctx, "quota.reserve")
	t, err := h.opts.Quota.Reserve(ctx, QuotaRequest{Decision: c.decision, Tokens: counted(e.Limits.Count, est.Input, est.Output), Tier: c.tier, Principal: c.ledgerPrincipal(), Profile: c.profile})
	span.End()
	if err != nil {
		if rej, ok := err.(*Rejection); ok && rej.Reason != ReasonClientGone {
			c.quotaNote = "rejected:" + rej.Reason
			h.opts.Metrics.Rejection(e.Name, c.account.Team, c.account.ID, rej.Reason)
		}
		return err
	}
	c.ticket = t
	c.quotaNote = "reserved"
	if rem := t.Remaining(); rem >= 0 {
		w.Header().Set("X-Gateway-Quota-Remaining-Tokens", strconv.FormatInt(rem, 10))
	}
	return nil
}

// settle charges the reservation with the exact usage, or with the estimate when
// the upstream's usage could not be learned.
func (h *Handler) settle(ctx context.Context, c *call) {
	if !c.route.Op.Generates() {
		return
	}
	estimated := !c.hasUsage
	if estimated {
		// What the call consumed as far as the gateway can tell: the input
		// estimate (or the input count the stream reported) plus the output
		// seen, never the whole reservation. The metrics, the access log and
		// the ledger record the same figures, marked estimated.
		in, out := c.estimate.Input, c.outputSeen
		if c.partialInput > 0 {
			in = c.partialInput
		}
		if c.route.Op == bedrock.OpInvokeModelWithBidirectionalStream {
			// A session's input (speech) cannot be measured as it passes:
			// the whole reservation stays charged.
			out = max(c.estimate.Output, c.outputSeen)
		}
		c.usage, c.hasUsage = bedrock.Usage{InputTokens: in, OutputTokens: out, Estimated: true}, true
	}
	c.usage.Failed = c.upstreamFailed
	if c.ticket == nil {
		return
	}
	ctx, span := h.startSpan(context.WithoutCancel(ctx), "quota.settle")
	defer span.End()
	count := c.decision.Entitlement.Limits.Count
	c.ticket.Settle(ctx, counted(count, c.usage.InputTokens, c.usage.OutputTokens), c.usage)
	c.quotaNote = "settled"
	if estimated {
		c.quotaNote = "charged_estimate"
	}
	c.ticket = nil
}

// release cancels the reservation (no charge).
func (h *Handler) release(ctx context.Context, c *call) {
	if c.ticket == nil {
		return
	}
	c.ticket.Release(context.WithoutCancel(ctx))
	c.ticket = nil
	c.quotaNote = "released"
}
