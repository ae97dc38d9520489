package state

import (
	"strings"
	"testing"
)

func TestMatchPrincipal(t *testing.T) {
	t.Parallel()
	const sso = "arn:aws:sts::222222222222:assumed-role/AWSReservedSSO_Support_0123abcd/alice@example.com"
	tests := []struct {
		name, pattern, arn string
		want               bool
	}{
		{"exact role", "arn:aws:iam::222222222222:role/support", "arn:aws:iam::222222222222:role/support", true},
		{"assumed role is its role", "arn:aws:iam::222222222222:role/support", "arn:aws:sts::222222222222:assumed-role/support/session-1", true},
		{"wildcard suffix", "arn:aws:iam::222222222222:role/support-*", "arn:aws:sts::222222222222:assumed-role/support-eu/s", true},
		{"wildcard needs prefix", "arn:aws:iam::222222222222:role/support-*", "arn:aws:sts::222222222222:assumed-role/supporter/s", false},
		{"wildcard middle", "arn:aws:iam::222222222222:role/a*z", "arn:aws:iam::222222222222:role/abcz", true},
		{"wildcard middle no match", "arn:aws:iam::222222222222:role/a*z", "arn:aws:iam::222222222222:role/abcza", false},
		{"star matches all", "arn:aws:iam::222222222222:role/*", "arn:aws:sts::222222222222:assumed-role/x/y", true},
		{"caller path ignored", "arn:aws:iam::222222222222:user/bob", "arn:aws:iam::222222222222:user/team/eu/bob", true},
		{"pattern path ignored", "arn:aws:iam::222222222222:role/any/path/support", "arn:aws:iam::222222222222:role/support", true},
		{"sso role", "arn:aws:iam::222222222222:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_Support_*", sso, true},
		{"sso role without path", "arn:aws:iam::222222222222:role/AWSReservedSSO_Support_*", sso, true},
		{"case-insensitive name", "arn:aws:iam::222222222222:role/Support", "arn:aws:sts::222222222222:assumed-role/support/s", true},
		{"other account", "arn:aws:iam::222222222222:role/support", "arn:aws:sts::333333333333:assumed-role/support/s", false},
		{"user is no role", "arn:aws:iam::222222222222:role/bob", "arn:aws:iam::222222222222:user/bob", false},
		{"role is no user", "arn:aws:iam::222222222222:user/support", "arn:aws:sts::222222222222:assumed-role/support/s", false},
		{"other partition", "arn:aws:iam::222222222222:role/support", "arn:aws-cn:iam::222222222222:role/support", false},
		{"account root never", "arn:aws:iam::222222222222:role/*", "arn:aws:iam::222222222222:root", false},
		{"federated user never", "arn:aws:iam::222222222222:user/*", "arn:aws:sts::222222222222:federated-user/bob", false},
		{"empty caller (gateway credential)", "arn:aws:iam::222222222222:role/*", "", false},
		{"session name is not the role", "arn:aws:iam::222222222222:role/s", "arn:aws:sts::222222222222:assumed-role/support/s", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := MatchPrincipal(tt.pattern, tt.arn); got != tt.want {
				t.Errorf("MatchPrincipal(%q, %q) = %v, want %v", tt.pattern, tt.arn, got, tt.want)
			}
		})
	}
}

func TestCheckPrincipalPattern(t *testing.T) {
	t.Parallel()
	tests := []struct {
		pattern string
		wantErr string
	}{
		{"arn:aws:iam::222222222222:role/support-*", ""},
		{"arn:aws:iam::222222222222:user/bob", ""},
		{"arn:aws-us-gov:iam::222222222222:role/x", ""},
		{"arn:aws:iam::222222222222:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_*", ""},
		{"arn:aws:iam::2222222222*:role/x", "not an IAM role or user ARN"},
		{"arn:aws:iam::222222222222:role/team-*/x", "wildcard outside"},
		{"arn:aws:iam::222222222222:*/x", "not an IAM role or user ARN"},
		{"arn:aws:sts::222222222222:assumed-role/x/s", "not an IAM role or user ARN"},
		{"arn:aws:iam::222222222222:root", "not an IAM role or user ARN"},
		{"arn:aws:iam::222222222222:role/", "not an IAM role or user ARN"},
		{"arn:aws:iam::222222222222:group/x", "not an IAM role or user ARN"},
		{"arn:aws:iam:us-east-1:222222222222:role/x", "not an IAM role or user ARN"},
		{"arn:aws:iam::222222222222:role/a b", "character IAM does not allow"},
		{"support-*", "not an IAM role or user ARN"},
		{"arn:aws:iam::222222222222:role/" + strings.Repeat("a", 600), "longer than"},
	}
	for _, tt := range tests {
		t.Run(tt.pattern, func(t *testing.T) {
			t.Parallel()
			err := CheckPrincipalPattern(tt.pattern)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("error = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestValidatePrincipals(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		mutate  func(*State)
		wantErr string
	}{
		{"valid share principals", func(s *State) {
			s.Entitlements[0].Shares[0].Principals = []string{"arn:aws:iam::222222222222:role/support-*", "arn:aws:iam::333333333333:user/bob"}
		}, ""},
		{"malformed share principal", func(s *State) {
			s.Entitlements[0].Shares[0].Principals = []string{"support-*"}
		}, "share " + testOrg + ": principal \"support-*\" is not"},
		{"duplicate share principal", func(s *State) {
			s.Entitlements[0].Shares[0].Principals = []string{"arn:aws:iam::222222222222:role/a", "arn:aws:iam::222222222222:role/a"}
		}, "appears twice"},
		{"principal of another account than the target", func(s *State) {
			s.Entitlements[1].Shares[1].Principals = []string{"arn:aws:iam::333333333333:role/a"}
		}, "is of another account"},
		{"valid deny list", func(s *State) {
			s.DeniedPrincipals = []string{"arn:aws:iam::222222222222:role/*"}
		}, ""},
		{"malformed deny list", func(s *State) {
			s.DeniedPrincipals = []string{"arn:aws:iam::222222222222:role/x*/y"}
		}, "denied_principals: principal"},
		{"duplicate deny list", func(s *State) {
			s.DeniedPrincipals = []string{"arn:aws:iam::222222222222:role/x", "arn:aws:iam::222222222222:role/x"}
		}, "appears twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := validState()
			tt.mutate(s)
			err := s.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("error = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestValidateDeniedPrincipalsOfEmptyState(t *testing.T) {
	t.Parallel()
	s := &State{DeniedPrincipals: []string{"nonsense"}}
	if err := s.Validate(); err == nil {
		t.Fatal("a malformed deny list in an otherwise empty state was accepted")
	}
}

func TestDiffPrincipals(t *testing.T) {
	t.Parallel()
	old := validState()
	new := validState()
	new.Entitlements[0].Shares[0].Principals = []string{"arn:aws:iam::222222222222:role/a"}
	new.DeniedPrincipals = []string{"arn:aws:iam::222222222222:role/b"}
	var got []string
	for _, c := range Diff(old, new) {
		got = append(got, c.String())
	}
	want := []string{
		"update share whole-org/" + testOrg + ": principals: (whole account) -> arn:aws:iam::222222222222:role/a",
		"create denied_principal arn:aws:iam::222222222222:role/b",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("Diff =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestParsePrincipalsYAML(t *testing.T) {
	t.Parallel()
	s, err := Parse([]byte(`organization: {id: o-testorg0001, hub_account: "111111111111", accounts: [{id: "222222222222", name: a}]}
entitlements:
  - name: e
    model: m
    shares:
      - target: "222222222222"
        principals: ["arn:aws:iam::222222222222:role/support-*"]
denied_principals: ["arn:aws:iam::222222222222:user/mallory"]
`))
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Entitlements[0].Shares[0].Principals; len(got) != 1 || got[0] != "arn:aws:iam::222222222222:role/support-*" {
		t.Errorf("principals = %q", got)
	}
	if got := s.DeniedPrincipals; len(got) != 1 || got[0] != "arn:aws:iam::222222222222:user/mallory" {
		t.Errorf("denied_principals = %q", got)
	}
	c := s.Clone()
	c.Entitlements[0].Shares[0].Principals[0] = "x"
	c.DeniedPrincipals[0] = "x"
	if s.Entitlements[0].Shares[0].Principals[0] == "x" || s.DeniedPrincipals[0] == "x" {
		t.Error("Clone shares principal slices with the original")
	}
}

// FuzzMatchPrincipal: no input panics, a valid pattern without wildcards
// matches itself, and "*" as the name matches every principal of its kind.
func FuzzMatchPrincipal(f *testing.F) {
	f.Add("arn:aws:iam::222222222222:role/support-*", "arn:aws:sts::222222222222:assumed-role/support-eu/s")
	f.Add("arn:aws:iam::222222222222:user/a*b*c", "arn:aws:iam::222222222222:user/path/aXbYc")
	f.Add("arn:aws:iam::222222222222:role/**", "arn:aws:iam::222222222222:role/")
	f.Fuzz(func(t *testing.T, pattern, arn string) {
		got := MatchPrincipal(pattern, arn)
		if CheckPrincipalPattern(pattern) != nil {
			return
		}
		if !strings.Contains(pattern, "*") && !MatchPrincipal(pattern, pattern) {
			t.Fatalf("%q does not match itself", pattern)
		}
		p, ok := ParsePrincipal(arn)
		if !ok {
			if got {
				t.Fatalf("%q matched the non-principal %q", pattern, arn)
			}
			return
		}
		pat, _ := ParsePrincipal(pattern)
		star := "arn:" + pat.Partition + ":iam::" + pat.Account + ":" + pat.Kind + "/*"
		if want := p.Partition == pat.Partition && p.Account == pat.Account && p.Kind == pat.Kind; MatchPrincipal(star, arn) != want {
			t.Fatalf("%q vs %q: star match %v, want %v", star, arn, !want, want)
		}
	})
}
