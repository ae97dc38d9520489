package state

import (
	"slices"
	"strings"
)

// BillingProfile records the application inference profile the gateway calls
// for an entitlement (Team empty: per_entitlement) or one team of it
// (per_team). gateway billing sync writes them; every replica reads them
// when the state version moves.
type BillingProfile struct {
	Entitlement string `json:"entitlement"`
	Team        string `json:"team,omitempty"`
	// ARN of the application inference profile.
	ARN string `json:"arn"`
	// Source is the ARN the profile copies (a foundation model or a
	// system-defined inference profile).
	Source string `json:"source,omitempty"`
}

// Key is the record's field in the hash: the entitlement name (which never
// holds '/') and the team.
func (p BillingProfile) Key() string { return p.Entitlement + "/" + p.Team }

// SortBillingProfiles orders ps by entitlement, then team.
func SortBillingProfiles(ps []BillingProfile) {
	slices.SortFunc(ps, func(a, b BillingProfile) int {
		if c := strings.Compare(a.Entitlement, b.Entitlement); c != 0 {
			return c
		}
		return strings.Compare(a.Team, b.Team)
	})
}
