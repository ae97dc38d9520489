package admin

import (
	"time"

	"github.com/bedrock-gateway/gateway/internal/state"
)

// Plan computes what applying file to cur yields (the same rules as
// POST /admin/v1/apply): the resulting state and the changes. `gateway serve
// --bootstrap` uses it so a bootstrap file and the apply command agree.
func Plan(cur, file *state.State, prune bool, now time.Time) (*state.State, []state.Change, error) {
	return plan(cur, file, prune, now)
}
