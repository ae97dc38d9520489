package proxy

import (
	"testing"

	"github.com/bedrock-gateway/gateway/internal/authz"
	"github.com/bedrock-gateway/gateway/internal/bedrock"
	"github.com/bedrock-gateway/gateway/internal/state"
)

type fakeProfiles map[string]string

func (f fakeProfiles) Profile(ent, team string) (string, bool) {
	arn, ok := f[ent+"/"+team]
	return arn, ok
}

func TestChooseProfile(t *testing.T) {
	t.Parallel()
	const devARN = "arn:aws:bedrock:us-east-1:111111111111:application-inference-profile/aaaaaaaaaaaa"
	const entARN = "arn:aws:bedrock:us-east-1:111111111111:application-inference-profile/bbbbbbbbbbbb"
	profiles := fakeProfiles{"team-ent/dev": devARN, "whole-ent/": entARN}
	tests := []struct {
		name, mode, ent, team string
		op                    bedrock.Operation
		want                  string
		missing               bool
	}{
		{"per team", state.ProfilesPerTeam, "team-ent", "dev", bedrock.OpConverse, devARN, false},
		{"per team, stream", state.ProfilesPerTeam, "team-ent", "dev", bedrock.OpInvokeModelWithResponseStream, devARN, false},
		{"per team, no profile yet", state.ProfilesPerTeam, "team-ent", "ops", bedrock.OpInvokeModel, "", true},
		{"per entitlement", state.ProfilesPerEntitlement, "whole-ent", "ops", bedrock.OpConverseStream, entARN, false},
		{"count tokens keeps the model", state.ProfilesPerTeam, "team-ent", "dev", bedrock.OpCountTokens, "", false},
		{"bidirectional keeps the model", state.ProfilesPerTeam, "team-ent", "dev", bedrock.OpInvokeModelWithBidirectionalStream, "", false},
		{"none", state.ProfilesNone, "team-ent", "dev", bedrock.OpConverse, "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var missing []string
			h := &Handler{opts: Options{Profiles: profiles, OnProfileMissing: func(e string) { missing = append(missing, e) }}}
			c := &call{route: bedrock.Route{Op: tc.op}, decision: &authz.Decision{
				Entitlement: &authz.Entitlement{Name: tc.ent, ProfileMode: tc.mode},
				Account:     &authz.Account{ID: "222222222222", Team: tc.team},
			}}
			h.chooseProfile(c)
			if c.profile != tc.want || (len(missing) == 1) != tc.missing {
				t.Errorf("profile %q missing %v; want %q %v", c.profile, missing, tc.want, tc.missing)
			}
		})
	}
}
