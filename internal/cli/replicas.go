package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// replicasPoll is how often --wait reads the replicas again: the
// heartbeats that report what each replica serves beat every second.
const replicasPoll = 250 * time.Millisecond

// replicasReply is GET /admin/v1/replicas.
type replicasReply struct {
	Replicas []struct {
		ID              string    `json:"id"`
		SnapshotVersion uint64    `json:"snapshot_version"`
		StartedAt       time.Time `json:"started_at"`
		SeenAt          time.Time `json:"seen_at"`
		Version         string    `json:"version"`
	} `json:"replicas"`
	StateVersion uint64 `json:"state_version"`
}

// lagging lists the replicas not serving the stored state version yet.
func (r *replicasReply) lagging() []string {
	var out []string
	for _, x := range r.Replicas {
		if x.SnapshotVersion < r.StateVersion {
			out = append(out, fmt.Sprintf("%s (serves %d)", x.ID, x.SnapshotVersion))
		}
	}
	return out
}

func runReplicas(ctx context.Context, args []string, env Env) error {
	fs, common := newFlags("replicas", "replicas [--wait [--timeout D]] [flags]\n\n"+
		"Lists the live gateway replicas (from their heartbeats in Redis), the state version\n"+
		"each serves and the version the store holds. A change (an apply, a revoked share, a\n"+
		"lowered cap) is in force on every replica once each serves at least the version the\n"+
		"change returned: IN_FORCE yes. --wait waits for that and fails after --timeout, so a\n"+
		"script can revoke and then know the revocation holds everywhere:\n\n"+
		"  gateway shares remove customer-support-llm 333333333333 && gateway replicas --wait", env, readFormats)
	wait := fs.Bool("wait", false, "wait until every live replica serves the stored state version")
	timeout := fs.Duration("timeout", 30*time.Second, "with --wait, give up after this long")
	pos, err := parse(fs, args)
	if err != nil {
		return done(err)
	}
	if len(pos) > 0 {
		return usageError(fs, "replicas: unexpected argument %q", pos[0])
	}
	if *timeout <= 0 {
		return usageError(fs, "replicas: --timeout must be positive")
	}
	c, err := common.client(env)
	if err != nil {
		return err
	}
	var rep replicasReply
	var raw []byte
	read := func() error {
		rep = replicasReply{}
		raw, err = c.getJSON(ctx, "/admin/v1/replicas", nil, &rep)
		return err
	}
	if err := read(); err != nil {
		return err
	}
	if *wait {
		deadline := time.Now().Add(*timeout)
		for len(rep.Replicas) == 0 || len(rep.lagging()) > 0 {
			if time.Now().After(deadline) {
				if len(rep.Replicas) == 0 {
					return errors.New("replicas: no live replica after " + timeout.String() + " (is a gateway running against this Redis?)")
				}
				return fmt.Errorf("replicas: after %s, not every replica serves state version %d: %s",
					*timeout, rep.StateVersion, strings.Join(rep.lagging(), ", "))
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(replicasPoll):
			}
			if err := read(); err != nil {
				return err
			}
		}
	}
	if ok, err := common.printRaw(env.Stdout, raw); ok {
		return err
	}
	t := table{header: []string{"REPLICA", "SERVES", "IN_FORCE", "STARTED_AT", "SEEN_AT", "BUILD"},
		empty: fmt.Sprintf("no live replica (state version %d)", rep.StateVersion)}
	for _, x := range rep.Replicas {
		inForce := "no"
		if x.SnapshotVersion >= rep.StateVersion {
			inForce = "yes"
		}
		t.rows = append(t.rows, []any{x.ID, x.SnapshotVersion, inForce, x.StartedAt.Format(time.RFC3339), x.SeenAt.Format(time.RFC3339), x.Version})
	}
	return common.printRows(env.Stdout, t)
}
