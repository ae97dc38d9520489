package server

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/bedrock-gateway/gateway/internal/quota"
)

// TestCapMessage: a refusal gives figures for the caller's own caps (share,
// account) only; the entitlement-wide cap is named with its reset and nothing else.
func TestCapMessage(t *testing.T) {
	t.Parallel()
	reset := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name      string
		err       quota.CapExceededError
		want      []string
		notDigits bool // no figure at all besides the reset time
	}{
		{
			name:      "entitlement spent",
			err:       quota.CapExceededError{Entitlement: "pooled", Level: quota.LevelEntitlement, Target: "pooled", Limit: 50_000_000, Used: 50_000_000, Requested: 26, ResetAt: reset},
			want:      []string{"entitlement pooled", "exhausted", "resets at 2026-12-01T00:00:00Z"},
			notDigits: true,
		},
		{
			name:      "entitlement nearly spent",
			err:       quota.CapExceededError{Entitlement: "pooled", Level: quota.LevelEntitlement, Target: "pooled", Limit: 50_000_000, Used: 49_999_000, Reserved: 974, Requested: 4122, ResetAt: reset},
			want:      []string{"entitlement pooled", "exhausted", "resets at 2026-12-01T00:00:00Z"},
			notDigits: true,
		},
		{
			name: "share nearly spent",
			err:  quota.CapExceededError{Entitlement: "pooled", Level: quota.LevelShare, Target: "ou-ab12-dev00001", Limit: 1000, Used: 900, Reserved: 50, Requested: 60, ResetAt: reset},
			want: []string{"share of entitlement pooled to ou-ab12-dev00001", "(1000 tokens)", "has 50 tokens left", "(60,", "resets at 2026-12-01T00:00:00Z"},
		},
		{
			name: "account spent",
			err:  quota.CapExceededError{Entitlement: "pooled", Level: quota.LevelAccount, Target: "222222222222", Limit: 1000, Used: 1000, Requested: 60, ResetAt: reset},
			want: []string{"account 222222222222 on entitlement pooled", "(1000 tokens) is spent", "resets at 2026-12-01T00:00:00Z"},
		},
	}
	digit := regexp.MustCompile(`[0-9]`)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			msg := capMessage(&tt.err)
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("message %q lacks %q", msg, w)
				}
			}
			if tt.notDigits {
				if rest := strings.ReplaceAll(msg, reset.Format(time.RFC3339), ""); digit.MatchString(rest) {
					t.Errorf("message %q gives figures of the entitlement-wide cap", msg)
				}
			}
		})
	}
}
