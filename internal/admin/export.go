package admin

import (
	"net/http"
	"strconv"

	"github.com/bedrock-gateway/gateway/internal/state"
)

// exportState answers GET /admin/v1/export: the whole state as a state file
// (YAML), so that `gateway apply -f` restores it. SigV4 secrets are left out
// unless include_secrets=true: without them a restore into an empty store has
// no way to verify those keys, and with them the file is as sensitive as the
// store itself. API keys are only ever stored (and exported) as SHA-256.
func (s *server) exportState(w http.ResponseWriter, r *http.Request) error {
	withSecrets := false
	if v := r.URL.Query().Get("include_secrets"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return errBadRequest("include_secrets %q must be true or false", v)
		}
		withSecrets = b
	}
	st, version, err := s.store.Load(r.Context())
	if err != nil {
		return err
	}
	if !withSecrets {
		st = st.Public()
	} else {
		s.log.Warn("state exported with secrets", "actor", actor(r), "version", version)
	}
	body, err := state.Marshal(st)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/yaml")
	w.Header().Set("X-Gateway-State-Version", strconv.FormatUint(version, 10))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
	return nil
}
