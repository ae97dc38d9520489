package admin

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/bedrock-gateway/gateway/internal/store"
)

// Replicas lists the live gateway replicas from their heartbeats and reads
// the stored state version, for GET /admin/v1/replicas: a change is in force
// everywhere once every replica serves a snapshot_version at least the
// version the change returned. *store.Store implements it.
type Replicas interface {
	LiveReplicas(ctx context.Context, ttl time.Duration) ([]store.Replica, error)
	Version(ctx context.Context) (uint64, error)
}

// replica is one live replica as the API shows it.
type replica struct {
	ID              string    `json:"id"`
	SnapshotVersion uint64    `json:"snapshot_version"`
	StartedAt       time.Time `json:"started_at"`
	SeenAt          time.Time `json:"seen_at"`
	Version         string    `json:"version,omitempty"`
}

type replicasBody struct {
	Replicas     []replica `json:"replicas"`
	StateVersion uint64    `json:"state_version"`
}

func (s *server) listReplicas(w http.ResponseWriter, r *http.Request) error {
	if s.replicas == nil {
		return errNotImplemented("replica listing")
	}
	// The version first: a replica listed after it that serves it has the
	// change in force, whatever happened in between.
	v, err := s.replicas.Version(r.Context())
	if err != nil {
		return fmt.Errorf("reading the state version: %w", err)
	}
	live, err := s.replicas.LiveReplicas(r.Context(), s.replicaTTL)
	if err != nil {
		return err
	}
	body := replicasBody{Replicas: make([]replica, 0, len(live)), StateVersion: v}
	for _, l := range live {
		body.Replicas = append(body.Replicas, replica{ID: l.ID, SnapshotVersion: l.SnapshotVersion,
			StartedAt: l.StartedAt.UTC(), SeenAt: l.SeenAt.UTC(), Version: l.Version})
	}
	writeJSON(w, http.StatusOK, body)
	return nil
}
