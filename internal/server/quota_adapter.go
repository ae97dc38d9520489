package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/bedrock-gateway/gateway/internal/bedrock"
	"github.com/bedrock-gateway/gateway/internal/metering"
	"github.com/bedrock-gateway/gateway/internal/proxy"
	"github.com/bedrock-gateway/gateway/internal/quota"
	"github.com/bedrock-gateway/gateway/internal/state"
)

// limiterQuota adapts a quota.Limiter to the proxy's Quota interface (the
// proxy defines what admission needs; the composition root supplies it); it
// is where quota refusals become Bedrock errors.
type limiterQuota struct {
	Limiter *quota.Limiter
	Metrics *metering.Metrics
	Logger  *slog.Logger
}

// Reserve implements proxy.Quota.
func (q *limiterQuota) Reserve(ctx context.Context, req proxy.QuotaRequest) (proxy.Ticket, error) {
	d := req.Decision
	e := d.Entitlement
	thresholds := e.Limits.AlertThresholds
	caps := make([]quota.Cap, 0, 3)
	if e.Limits.MonthlyTokens > 0 {
		caps = append(caps, quota.Cap{Level: quota.LevelEntitlement, Target: e.Name, Limit: e.Limits.MonthlyTokens, Thresholds: thresholds})
	}
	if d.Share.MonthlyTokens > 0 {
		caps = append(caps, quota.Cap{Level: quota.LevelShare, Target: d.Share.Target, Limit: d.Share.MonthlyTokens, Thresholds: thresholds})
	}
	if e.Limits.AccountMonthlyTokens > 0 {
		caps = append(caps, quota.Cap{Level: quota.LevelAccount, Target: d.Account.ID, Limit: e.Limits.AccountMonthlyTokens, Thresholds: thresholds})
	}
	r, err := q.Limiter.Reserve(ctx, quota.Request{
		Entitlement:       e.Name,
		Account:           d.Account.ID,
		Model:             d.UpstreamModel,
		Caps:              caps,
		RequestsPerMinute: e.Limits.RequestsPerMinute,
		TokensPerMinute:   e.Limits.TokensPerMinute,
		Tokens:            req.Tokens,
		FailOpen:          e.Limits.OnStoreUnavailable == state.FailOpen,
		Tier:              req.Tier,
		Team:              d.Account.Team, // the ledger keeps the team at call time
		Principal:         req.Principal,
	})
	if err != nil {
		return nil, q.rejection(e.Name, err)
	}
	return &limiterTicket{q: q, r: r}, nil
}

func (q *limiterQuota) rejection(entitlement string, err error) error {
	var capErr *quota.CapExceededError
	var rateErr *quota.RateLimitedError
	switch {
	case errors.As(err, &capErr):
		return &proxy.Rejection{Err: bedrock.QuotaExceeded(capMessage(capErr)), Reason: "monthly_cap_" + string(capErr.Level)}
	case errors.As(err, &rateErr):
		return &proxy.Rejection{
			Err: bedrock.Throttling(fmt.Sprintf("Too many requests: the %s limit of entitlement %s is reached for this account. Retry after %s.",
				strings.ReplaceAll(rateErr.Limit, "_", " "), entitlement, rateErr.RetryAfter.Round(time.Millisecond)), rateErr.RetryAfter),
			Reason: rateErr.Limit,
		}
	case errors.Is(err, context.Canceled):
		// The caller went away while its reservation was being decided: not a
		// store problem, and nothing to refuse.
		return &proxy.Rejection{Err: bedrock.Unavailable("The client went away."), Reason: proxy.ReasonClientGone}
	case errors.Is(err, quota.ErrStoreUnavailable):
		if q.Metrics != nil {
			q.Metrics.StoreError("reserve")
		}
		return &proxy.Rejection{
			Err:    bedrock.Unavailable("The quota store is unavailable and this entitlement fails closed. Try again shortly."),
			Reason: "store_unavailable",
		}
	}
	if q.Logger != nil {
		q.Logger.Error("reserving quota", "entitlement", entitlement, "error", err)
	}
	if q.Metrics != nil {
		q.Metrics.StoreError("reserve")
	}
	return &proxy.Rejection{Err: bedrock.Unavailable("The quota store could not decide this request. Try again shortly."), Reason: "store_error"}
}

type limiterTicket struct {
	q *limiterQuota
	r *quota.Reservation
}

// Remaining covers the caller's own caps only: the entitlement-wide cap is
// shared by every member, and how much of it is left is not theirs to know.
func (t *limiterTicket) Remaining() int64 {
	return t.r.RemainingAt(quota.LevelShare, quota.LevelAccount)
}

func (t *limiterTicket) Settle(ctx context.Context, counted int64, usage bedrock.Usage) {
	if err := t.q.Limiter.Settle(ctx, t.r, counted, usage); err != nil {
		t.q.storeError("settle", t.r, err)
	}
}

func (t *limiterTicket) Release(ctx context.Context) {
	if err := t.q.Limiter.Release(ctx, t.r); err != nil {
		t.q.storeError("release", t.r, err)
	}
}

func (q *limiterQuota) storeError(op string, r *quota.Reservation, err error) {
	if q.Metrics != nil {
		q.Metrics.StoreError(op)
	}
	if q.Logger != nil {
		q.Logger.Error("quota "+op+" failed", "reservation", r.ID, "error", err)
	}
}

// capMessage names the cap, what is left of it and when it resets. A cap that
// still has tokens left but fewer than the request may use says so, so the
// caller knows a smaller request (a lower max tokens) could still pass.
// Figures are given only for the caller's own caps (its share, its account):
// the entitlement-wide cap is shared by every member, so its limit and what is
// left of it would tell one member about the others' use.
func capMessage(e *quota.CapExceededError) string {
	reset := e.ResetAt.UTC().Format(time.RFC3339)
	var what string
	switch e.Level {
	case quota.LevelEntitlement:
		return fmt.Sprintf("The monthly token quota of entitlement %s is exhausted; it resets at %s.", e.Target, reset)
	case quota.LevelShare:
		what = "The monthly token cap of the share of entitlement " + e.Entitlement + " to " + e.Target
	default:
		what = "The monthly token cap of account " + e.Target + " on entitlement " + e.Entitlement
	}
	left := e.Limit - e.Used - e.Reserved
	if left > 0 {
		return fmt.Sprintf("%s (%d tokens) has %d tokens left this month, fewer than this request may use (%d, estimated from its size and maximum output); it resets at %s.",
			what, e.Limit, left, e.Requested, reset)
	}
	return fmt.Sprintf("%s (%d tokens) is spent; it resets at %s.", what, e.Limit, reset)
}
