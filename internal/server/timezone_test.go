package server

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/bedrock-gateway/gateway/internal/config"
	"github.com/bedrock-gateway/gateway/internal/sim"
	"github.com/bedrock-gateway/gateway/internal/store"
	"github.com/bedrock-gateway/gateway/internal/testutil/redistest"
)

// TestTimeZoneMismatchRefused: replicas of one store must count months in
// one zone. The first records its --time-zone; one started with another
// refuses to start, saying which zone the store has and how to change it,
// until --time-zone-change replaces the recorded zone.
func TestTimeZoneMismatchRefused(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	up := newUpstream(t, sim.Options{})
	startGateway(t, gatewayOptions{redis: rs.URL(), upstream: up, stateYAML: reportsStateYAML,
		args: []string{"--time-zone", "Europe/Paris"}})

	start := func(args ...string) error {
		t.Helper()
		args = append([]string{"--listen", "127.0.0.1:0", "--ops-listen", "127.0.0.1:0", "--redis-timeout", "5s"}, args...)
		env := map[string]string{"GATEWAY_ADMIN_TOKEN": "test=" + adminToken, "GATEWAY_REDIS_URL": rs.URL()}
		cfg, err := config.Load(args, func(k string) string { return env[k] }, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		srv, err := New(ctx, cfg, Deps{Logger: slog.New(slog.DiscardHandler), UpstreamURL: up.srv.URL,
			UpstreamCreds: credentials.NewStaticCredentialsProvider(hubAKID, hubSecret, "")})
		if err == nil {
			// Started: stop it at once (Run returns when ctx is done).
			done := make(chan error, 1)
			go func() { done <- srv.Run(ctx) }()
			cancel()
			<-done
		}
		return err
	}
	var mismatch *store.TimeZoneMismatchError
	for _, zone := range []string{"UTC", "America/New_York"} {
		err := start("--time-zone", zone)
		if !errors.As(err, &mismatch) || mismatch.Stored != "Europe/Paris" || mismatch.Configured != zone ||
			!strings.Contains(err.Error(), "--time-zone Europe/Paris") {
			t.Fatalf("replica with --time-zone %s: %v, want a refusal naming Europe/Paris", zone, err)
		}
	}
	// The default (UTC) is a zone like any other.
	if err := start(); !errors.As(err, &mismatch) {
		t.Fatalf("replica with the default zone: %v", err)
	}
	if err := start("--time-zone", "Europe/Paris"); err != nil {
		t.Fatalf("replica with the recorded zone: %v", err)
	}
	// The explicit change; from then on the new zone is the store's.
	if err := start("--time-zone", "UTC", "--time-zone-change"); err != nil {
		t.Fatalf("--time-zone-change: %v", err)
	}
	if err := start("--time-zone", "Europe/Paris"); !errors.As(err, &mismatch) || mismatch.Stored != "UTC" {
		t.Fatalf("old zone after the change: %v", err)
	}
	if err := start("--time-zone", "UTC"); err != nil {
		t.Fatalf("new zone after the change: %v", err)
	}
}
