package admin

import (
	"context"
	"errors"
	"net/http"

	"github.com/bedrock-gateway/gateway/internal/bedrock"
	"github.com/bedrock-gateway/gateway/internal/state"
	"github.com/bedrock-gateway/gateway/internal/store"
)

// BillingStore records the application inference profiles of gateway
// billing sync (*store.Store).
type BillingStore interface {
	BillingProfiles(ctx context.Context) ([]state.BillingProfile, error)
	// ReplaceBillingProfiles makes the records exactly ps (audited) and
	// returns the state version that carries them.
	ReplaceBillingProfiles(ctx context.Context, actor string, ps []state.BillingProfile) (uint64, error)
}

// billingProfilesBody is GET's answer and PUT's body.
type billingProfilesBody struct {
	Profiles []state.BillingProfile `json:"profiles"`
}

func (s *server) listBillingProfiles(w http.ResponseWriter, r *http.Request) error {
	if s.billing == nil {
		return errNotImplemented("billing profiles")
	}
	ps, err := s.billing.BillingProfiles(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, billingProfilesBody{Profiles: ps})
	return nil
}

// replaceBillingProfiles makes the recorded profiles exactly the body's; the
// calls of this replica use them when it returns, every other replica's
// within about a second.
func (s *server) replaceBillingProfiles(w http.ResponseWriter, r *http.Request) error {
	if s.billing == nil {
		return errNotImplemented("billing profiles")
	}
	var body billingProfilesBody
	if err := readJSON(w, r, &body); err != nil {
		return err
	}
	for _, p := range body.Profiles {
		if !bedrock.IsEntitlementName(p.Entitlement) {
			return errBadRequest("profile of %q: not an entitlement name", p.Entitlement)
		}
		if m, err := bedrock.ParseModelID(p.ARN); err != nil || m.Kind != bedrock.KindApplicationInferenceProfileARN {
			return errBadRequest("profile of %s: %q is not an application inference profile ARN", p.Entitlement, p.ARN)
		}
	}
	ctx := r.Context()
	version, err := s.billing.ReplaceBillingProfiles(ctx, actor(r), body.Profiles)
	if errors.Is(err, store.ErrInvalid) {
		return &apiError{Status: http.StatusBadRequest, Code: codeValidationFailed, Message: err.Error()}
	}
	if err != nil {
		return err
	}
	if err := s.waitApplied(ctx, version); err != nil {
		return err
	}
	ps, err := s.billing.BillingProfiles(ctx)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, billingProfilesBody{Profiles: ps})
	return nil
}
