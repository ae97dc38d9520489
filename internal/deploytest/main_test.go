// Package deploytest keeps what operators run honest against the binary: the
// container image (deploy/docker), the compose stack (deploy/compose), the
// Kubernetes manifests (deploy/kubernetes) and the configuration reference in
// docs/operations.md. It holds tests only. Every flag, environment variable,
// port and path those files use is checked against the gateway's own command
// line (the -h output of each subcommand) and its settings table, and every
// gateway configuration they describe is loaded with config.Load, so a renamed
// flag or a bad value fails here instead of in a deployment.
//
// Regenerate the configuration reference in docs/operations.md with
//
//	UPDATE_DOCS=1 go test ./internal/deploytest/ -run TestOperationsConfigReference
//
// (or the -update flag).
package deploytest

import (
	"flag"
	"testing"

	"github.com/bedrock-gateway/gateway/internal/testutil/leakcheck"
)

var update = flag.Bool("update", false, "rewrite the generated configuration reference in docs/operations.md")

func TestMain(m *testing.M) { leakcheck.Main(m) }
