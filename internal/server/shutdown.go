package server

import (
	"context"
	"time"
)

// cutGrace bounds how long calls cut at the shutdown deadline may take to
// write their closing exception frame and queue their settlement.
const cutGrace = 5 * time.Second

// cutInflight runs when --shutdown-timeout passes with calls still in flight:
// every open stream ends with a serviceUnavailableException frame, every call
// settles what it consumed so far, and one log line says what was cut. Only
// then are the remaining connections closed; the quota limiter is closed
// after this, so the settlements are written to Redis or spilled, not lost.
func (s *Server) cutInflight() {
	inflight := s.proxy.Inflight()
	s.proxy.CutStreams()
	graceCtx, cancel := context.WithTimeout(context.Background(), cutGrace)
	defer cancel()
	// A second Shutdown waits for the cut handlers to finish their responses
	// and for their connections to become idle.
	err := s.data.Shutdown(graceCtx)
	if err != nil {
		_ = s.data.Close()
	}
	s.log.Warn("shutdown timeout reached: calls still in flight were cut",
		"inflight_at_deadline", inflight, "upstream_calls_cut", s.proxy.Cut(),
		"still_running_after_grace", s.proxy.Inflight(),
		"shutdown_timeout", s.cfg.ShutdownTimeout, "connections_closed_forcibly", err != nil)
}
