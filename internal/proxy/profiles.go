package proxy

import (
	"github.com/bedrock-gateway/gateway/internal/bedrock"
	"github.com/bedrock-gateway/gateway/internal/state"
)

// Profiles finds recorded application inference profiles (gateway billing
// sync records them; the server keeps them in memory, refreshed when the
// state version moves).
type Profiles interface {
	// Profile returns the ARN recorded for the entitlement and team (team
	// empty: the entitlement's own profile).
	Profile(entitlement, team string) (arn string, ok bool)
}

// acceptsProfile reports whether Bedrock accepts an application inference
// profile as the model of op: the other operations keep the model.
func acceptsProfile(op bedrock.Operation) bool {
	switch op {
	case bedrock.OpInvokeModel, bedrock.OpInvokeModelWithResponseStream, bedrock.OpConverse, bedrock.OpConverseStream:
		return true
	}
	return false
}

// chooseProfile sends a call of an entitlement with billing.profiles to its
// team's (or its own) profile, so that AWS Billing attributes its cost; with
// no profile recorded yet the call goes to the foundation model and the miss
// is counted.
func (h *Handler) chooseProfile(c *call) {
	e := c.decision.Entitlement
	if e.ProfileMode == "" || e.ProfileMode == state.ProfilesNone || !acceptsProfile(c.route.Op) {
		return
	}
	team := ""
	if e.ProfileMode == state.ProfilesPerTeam {
		team = c.decision.Account.Team
	}
	if h.opts.Profiles != nil {
		if arn, ok := h.opts.Profiles.Profile(e.Name, team); ok {
			c.profile = arn
			return
		}
	}
	if h.opts.OnProfileMissing != nil {
		h.opts.OnProfileMissing(e.Name)
	}
}
