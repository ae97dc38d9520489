package admin

import (
	"net/http"
	"slices"
	"time"

	"github.com/bedrock-gateway/gateway/internal/authn"
	"github.com/bedrock-gateway/gateway/internal/state"
)

type issueRequest struct {
	Account   string     `json:"account"`
	Kind      string     `json:"kind"`
	Label     string     `json:"label"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

// issueResponse carries the secret exactly once: it is never stored in a
// readable form (api_key) or never listed again (sigv4).
type issueResponse struct {
	Credential      state.Credential `json:"credential"`
	SecretAccessKey string           `json:"secret_access_key,omitempty"`
	APIKey          string           `json:"api_key,omitempty"`
	// Warnings are for the operator issuing the credential.
	Warnings     []string `json:"warnings,omitempty"`
	StateVersion uint64   `json:"state_version"`
}

// plainHTTPWarning is given with an API key issued while the data listener
// serves plain HTTP: the SDKs send bearer tokens only over HTTPS, and the
// gateway refuses them over plain HTTP.
const plainHTTPWarning = "this gateway's data listener serves plain HTTP, where API keys are refused (the AWS SDKs send bearer tokens only over HTTPS): " +
	"give it a certificate (--tls-cert, --tls-key), or run it behind a TLS-terminating load balancer with --behind-tls-proxy, or issue a sigv4 credential instead"

// publicCredentials strips every secret from a list of credentials.
func publicCredentials(creds []state.Credential) []state.Credential {
	pub := (&state.State{Credentials: creds}).Public().Credentials
	for i := range pub {
		// Inputs that name secrets are never stored, but never echo them.
		pub[i].SecretEnv, pub[i].KeyEnv = "", ""
	}
	if pub == nil {
		pub = []state.Credential{}
	}
	return pub
}

func (s *server) listCredentials(w http.ResponseWriter, r *http.Request) error {
	account := r.URL.Query().Get("account")
	st, _, err := s.load(r.Context())
	if err != nil {
		return err
	}
	creds := st.Credentials
	if account != "" {
		creds = slices.DeleteFunc(creds, func(c state.Credential) bool { return c.Account != account })
	}
	writeJSON(w, http.StatusOK, map[string]any{"credentials": publicCredentials(creds)})
	return nil
}

func (s *server) issueCredential(w http.ResponseWriter, r *http.Request) error {
	var req issueRequest
	if err := readJSON(w, r, &req); err != nil {
		return err
	}
	now := s.stamp()
	if req.ExpiresAt != nil {
		t := req.ExpiresAt.UTC()
		if !t.After(now) {
			return errBadRequest("expires_at %s is not in the future", t.Format(time.RFC3339))
		}
		req.ExpiresAt = &t
	}
	c := state.Credential{
		Account:   req.Account,
		Kind:      req.Kind,
		Label:     req.Label,
		ExpiresAt: req.ExpiresAt,
		CreatedAt: now,
	}
	resp := issueResponse{}
	var err error
	switch req.Kind {
	case state.KindSigV4:
		c.AccessKeyID, c.Secret, err = authn.NewAccessKey()
		resp.SecretAccessKey = c.Secret
	case state.KindAPIKey:
		resp.APIKey, c.KeySHA256, err = authn.NewAPIKey()
		if s.plainHTTP {
			resp.Warnings = append(resp.Warnings, plainHTTPWarning)
		}
	default:
		return errBadRequest("kind %q must be sigv4 or api_key", req.Kind)
	}
	if err != nil {
		return err
	}
	c.ID = c.DefaultID()
	v, _, err := s.update(r, "credential.issue", func(st *state.State) error {
		if slices.ContainsFunc(st.Credentials, func(o state.Credential) bool { return o.ID == c.ID }) {
			// 2^93 access key IDs make this practically impossible; refuse
			// rather than overwrite.
			return errConflict("credential %s already exists; issue again", c.ID)
		}
		st.Credentials = append(st.Credentials, c)
		return validate(st, "the credential is invalid")
	})
	if err != nil {
		return err
	}
	resp.Credential = publicCredentials([]state.Credential{c})[0]
	w.Header().Set("Location", "/admin/v1/credentials/"+c.ID)
	resp.StateVersion = v
	writeJSON(w, http.StatusCreated, resp)
	return nil
}

func (s *server) revokeCredential(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	v, _, err := s.update(r, "credential.revoke", func(st *state.State) error {
		i := slices.IndexFunc(st.Credentials, func(c state.Credential) bool { return c.ID == id })
		if i < 0 {
			return errNotFound("credential %q does not exist", id)
		}
		st.Credentials = slices.Delete(st.Credentials, i, i+1)
		return validate(st, "revoking credential "+id)
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, changeBody{StateVersion: v})
	return nil
}
