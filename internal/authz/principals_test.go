package authz

import (
	"testing"

	"github.com/bedrock-gateway/gateway/internal/bedrock"
	"github.com/bedrock-gateway/gateway/internal/state"
)

// principalFixture adds entitlements whose shares name principals to fixture.
func principalFixture() *state.State {
	s := fixture()
	s.Entitlements = append(s.Entitlements,
		state.Entitlement{Name: "support", Model: "m-support", Shares: []state.Share{
			{Target: acctC, MonthlyTokens: 3, Principals: []string{"arn:aws:iam::" + acctC + ":role/support-*", "arn:aws:iam::" + acctC + ":user/bob"}},
		}},
		state.Entitlement{Name: "sso", Model: "m-sso", Shares: []state.Share{
			{Target: ouA, Principals: []string{"arn:aws:iam::" + acctC + ":role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_DataScience_*"}},
		}},
		// The account's own share is narrowed, the OU's is not: a caller the
		// account share does not admit still falls back to the OU share.
		state.Entitlement{Name: "layered", Model: "m-layered", Shares: []state.Share{
			{Target: ouA, MonthlyTokens: 100},
			{Target: acctC, MonthlyTokens: 10, Principals: []string{"arn:aws:iam::" + acctC + ":role/vip"}},
		}},
	)
	s.DeniedPrincipals = []string{"arn:aws:iam::" + acctC + ":role/compromised-*", "arn:aws:iam::" + acctX + ":user/mallory"}
	s.Normalize()
	return s
}

func TestAuthorizePrincipals(t *testing.T) {
	t.Parallel()
	snap := build(t, principalFixture())
	const (
		role    = "arn:aws:iam::" + acctC + ":role/support-eu"
		session = "arn:aws:sts::" + acctC + ":assumed-role/support-eu/alice"
		bob     = "arn:aws:iam::" + acctC + ":user/bob"
		bobPath = "arn:aws:iam::" + acctC + ":user/staff/bob"
		ssoDS   = "arn:aws:sts::" + acctC + ":assumed-role/AWSReservedSSO_DataScience_0123456789abcdef/carol@example.com"
		ssoOps  = "arn:aws:sts::" + acctC + ":assumed-role/AWSReservedSSO_Ops_0123456789abcdef/dave@example.com"
		other   = "arn:aws:sts::" + acctC + ":assumed-role/billing/eve"
		vip     = "arn:aws:sts::" + acctC + ":assumed-role/vip/s"
	)
	tests := []struct {
		name       string
		account    string
		principal  string
		model      string
		wantReason DenyReason // "" allows
		wantShare  state.Share
	}{
		{"role matches pattern", acctC, role, "support", "", state.Share{Target: acctC, MonthlyTokens: 3}},
		{"assumed-role session matches as its role", acctC, session, "support", "", state.Share{Target: acctC, MonthlyTokens: 3}},
		{"user matches", acctC, bob, "support", "", state.Share{Target: acctC, MonthlyTokens: 3}},
		{"user with path matches", acctC, bobPath, "support", "", state.Share{Target: acctC, MonthlyTokens: 3}},
		{"other role refused", acctC, other, "support", DenyPrincipalNotMatched, state.Share{}},
		{"gateway credential refused", acctC, "", "support", DenyPrincipalNotMatched, state.Share{}},
		{"upstream model ID, principal matches", acctC, session, "m-support", "", state.Share{Target: acctC, MonthlyTokens: 3}},
		{"upstream model ID, gateway credential", acctC, "", "m-support", DenyNotShared, state.Share{}},
		{"SSO role under its path", acctC, ssoDS, "sso", "", state.Share{Target: ouA}},
		{"other SSO permission set", acctC, ssoOps, "sso", DenyPrincipalNotMatched, state.Share{}},
		{"principal of the same name in another account", acctB, "arn:aws:sts::" + acctB + ":assumed-role/AWSReservedSSO_DataScience_0/x", "sso", DenyPrincipalNotMatched, state.Share{}},
		{"narrowed account share admits the vip", acctC, vip, "layered", "", state.Share{Target: acctC, MonthlyTokens: 10}},
		{"others fall back to the OU share", acctC, other, "layered", "", state.Share{Target: ouA, MonthlyTokens: 100}},
		{"gateway credential falls back to the OU share", acctC, "", "layered", "", state.Share{Target: ouA, MonthlyTokens: 100}},
		{"shares without principals admit every principal", acctC, other, "nested", "", state.Share{Target: ouA, MonthlyTokens: 7}},
		{"principal never widens a share", acctX, "arn:aws:iam::" + acctX + ":role/support-eu", "support", DenyNotShared, state.Share{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d, err := snap.AuthorizeAs(tt.account, tt.principal, bedrock.OpConverse, tt.model)
			if tt.wantReason != "" {
				if err == nil {
					t.Fatalf("allowed with share %+v, want denial %s", d.Share, tt.wantReason)
				}
				if got := ReasonOf(err); got != tt.wantReason {
					t.Fatalf("reason = %q (%v), want %q", got, err, tt.wantReason)
				}
				if err.Error() != denied(DenyNotShared).Error() {
					t.Errorf("message = %q: a principal denial must look like every other", err.Error())
				}
				return
			}
			if err != nil {
				t.Fatalf("denied: %v (%s)", err, ReasonOf(err))
			}
			if d.Share.Target != tt.wantShare.Target || d.Share.MonthlyTokens != tt.wantShare.MonthlyTokens {
				t.Errorf("share = %+v, want %+v", d.Share, tt.wantShare)
			}
		})
	}
}

func TestAuthorizeWithoutPrincipalIsGatewayCredential(t *testing.T) {
	t.Parallel()
	snap := build(t, principalFixture())
	if _, err := snap.Authorize(acctC, bedrock.OpConverse, "support"); ReasonOf(err) != DenyPrincipalNotMatched {
		t.Fatalf("Authorize of a principal share = %v, want %s", err, DenyPrincipalNotMatched)
	}
}

func TestEntitlementsAs(t *testing.T) {
	t.Parallel()
	snap := build(t, principalFixture())
	has := func(list []*Entitlement, name string) bool {
		for _, e := range list {
			if e.Name == name {
				return true
			}
		}
		return false
	}
	tests := []struct {
		principal string
		want      map[string]bool
	}{
		{"", map[string]bool{"support": false, "sso": false, "layered": true, "nested": true}},
		{"arn:aws:sts::" + acctC + ":assumed-role/support-x/s", map[string]bool{"support": true, "sso": false, "layered": true}},
		{"arn:aws:sts::" + acctC + ":assumed-role/AWSReservedSSO_DataScience_1/s", map[string]bool{"support": false, "sso": true}},
	}
	for _, tt := range tests {
		list := snap.EntitlementsAs(acctC, tt.principal)
		for name, want := range tt.want {
			if got := has(list, name); got != want {
				t.Errorf("EntitlementsAs(%q) lists %s = %v, want %v", tt.principal, name, got, want)
			}
		}
	}
}

func TestPrincipalDenied(t *testing.T) {
	t.Parallel()
	snap := build(t, principalFixture())
	tests := []struct {
		principal string
		want      bool
	}{
		{"arn:aws:sts::" + acctC + ":assumed-role/compromised-ci/run-1", true},
		{"arn:aws:iam::" + acctC + ":role/compromised-ci", true},
		{"arn:aws:iam::" + acctX + ":user/ops/mallory", true},
		{"arn:aws:iam::" + acctC + ":user/mallory", false},
		{"arn:aws:sts::" + acctC + ":assumed-role/support-eu/s", false},
		{"", false},
		{"not an arn", false},
	}
	for _, tt := range tests {
		if got := snap.PrincipalDenied(tt.principal); got != tt.want {
			t.Errorf("PrincipalDenied(%q) = %v, want %v", tt.principal, got, tt.want)
		}
	}
	if build(t, fixture()).PrincipalDenied("arn:aws:iam::" + acctC + ":role/compromised-ci") {
		t.Error("a snapshot without a deny list denied a principal")
	}
}

func TestAuthorizeAsAllocatesNothing(t *testing.T) {
	snap := build(t, principalFixture())
	const session = "arn:aws:sts::" + acctC + ":assumed-role/support-eu/alice"
	for _, model := range []string{"support", "nested", "layered"} {
		allocs := testing.AllocsPerRun(1000, func() {
			if _, err := snap.DecideAs(acctC, session, bedrock.OpConverse, model); err != nil {
				panic("denied")
			}
		})
		if allocs != 0 {
			t.Errorf("DecideAs(%s) allocates %.1f times per call", model, allocs)
		}

	}
	allocs := testing.AllocsPerRun(1000, func() {
		if snap.PrincipalDenied(session) {
			panic("denied")
		}
	})
	if allocs != 0 {
		t.Errorf("PrincipalDenied allocates %.1f times per call", allocs)
	}
}
