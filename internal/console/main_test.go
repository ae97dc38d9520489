package console

import (
	"testing"

	"github.com/bedrock-gateway/gateway/internal/testutil/leakcheck"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }
