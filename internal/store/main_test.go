package store

import (
	"testing"

	"github.com/bedrock-gateway/gateway/internal/testutil/leakcheck"
)

// TestMain fails the run when goroutines of this package or of go-redis outlive
// the tests: Watch and Syncer must stop with their context, subscriptions must
// be closed.
func TestMain(m *testing.M) { leakcheck.Main(m, "github.com/redis/go-redis") }
