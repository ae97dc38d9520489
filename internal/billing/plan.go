package billing

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/bedrock-gateway/gateway/internal/bedrock"
	"github.com/bedrock-gateway/gateway/internal/state"
)

// Want is one profile the state asks for.
type Want struct {
	Entitlement string `json:"entitlement"`
	// Team is empty for per_entitlement.
	Team   string `json:"team,omitempty"`
	Region string `json:"region"`
	// Source is the ARN the profile copies; BaseModel the foundation model it
	// answers as (empty when the ID does not say).
	Source    string `json:"source"`
	BaseModel string `json:"-"`
}

func (w Want) key() string { return w.Entitlement + "/" + w.Team }

// WantOptions configure Wanted.
type WantOptions struct {
	// Region is where entitlements without their own region call (the
	// gateway's upstream region).
	Region string
}

// Wanted lists the profiles the state's entitlements ask for, sorted by
// entitlement and team: one per entitlement with billing.profiles
// per_entitlement, one per team of the accounts its shares cover with
// per_team (inactive accounts included: their records stay).
func Wanted(st *state.State, o WantOptions) ([]Want, error) {
	var out []Want
	for _, e := range st.Entitlements {
		mode := e.Billing.ProfileMode()
		if mode == state.ProfilesNone {
			continue
		}
		w, err := source(e, st.Organization.HubAccount, o.Region)
		if err != nil {
			return nil, fmt.Errorf("entitlement %s: %w", e.Name, err)
		}
		if mode == state.ProfilesPerEntitlement {
			out = append(out, w)
			continue
		}
		for _, team := range teamsOf(&st.Organization, &e) {
			t := w
			t.Team = team
			out = append(out, t)
		}
	}
	slices.SortFunc(out, func(a, b Want) int {
		return cmp.Or(strings.Compare(a.Entitlement, b.Entitlement), strings.Compare(a.Team, b.Team))
	})
	return out, nil
}

// teamsOf lists the teams of the accounts e's shares cover, sorted. An
// account's team is its own, else its OU's name, else "root" (as the
// gateway's snapshot has it); a share covers the account it names, the
// accounts under the OU it names (at any depth), or all of them (the
// organization or the root).
func teamsOf(o *state.Organization, e *state.Entitlement) []string {
	targets := make(map[string]bool, len(e.Shares))
	all := false
	for _, sh := range e.Shares {
		targets[sh.Target] = true
		all = all || sh.Target == o.ID || sh.Target == o.Root || state.IsRootID(sh.Target)
	}
	units := make(map[string]state.Unit, len(o.Units))
	for _, u := range o.Units {
		units[u.ID] = u
	}
	seen := map[string]bool{}
	for _, a := range o.Accounts {
		team := a.Team
		covered := all || targets[a.ID]
		u, inUnit := units[a.Unit]
		if team == "" {
			team = "root"
			if inUnit {
				team = u.Name
			}
		}
		// Walk up the OUs (bounded, in case of a cycle in unchecked input).
		for i := 0; inUnit && !covered && i <= len(units); i++ {
			covered = targets[u.ID]
			u, inUnit = units[u.Parent]
		}
		if covered {
			seen[team] = true
		}
	}
	return slices.Sorted(maps.Keys(seen))
}

// source works out what a profile of e copies and where it lives: a
// foundation model's ARN for a base model ID, the hub's system-defined
// profile ARN for a cross-region profile ID, or the model's own ARN.
func source(e state.Entitlement, hub, region string) (Want, error) {
	m, err := bedrock.ParseModelID(e.Model)
	if err != nil {
		return Want{}, err
	}
	w := Want{Entitlement: e.Name, Region: cmp.Or(e.Region, region, "us-east-1"), BaseModel: m.BaseModel}
	switch m.Kind {
	case bedrock.KindBaseModel:
		w.Source = "arn:" + partition(w.Region) + ":bedrock:" + w.Region + "::foundation-model/" + m.Raw
	case bedrock.KindInferenceProfile:
		if hub == "" {
			return Want{}, fmt.Errorf("copying %s needs the organization's hub_account", m.Raw)
		}
		w.Source = "arn:" + partition(w.Region) + ":bedrock:" + w.Region + ":" + hub + ":inference-profile/" + m.Raw
	case bedrock.KindFoundationModelARN, bedrock.KindInferenceProfileARN:
		w.Source, w.Region = m.Raw, m.Region
	default:
		return Want{}, fmt.Errorf("an application inference profile cannot copy a %s", m.Kind)
	}
	return w, nil
}

func partition(region string) string {
	switch {
	case strings.HasPrefix(region, "us-gov-"):
		return "aws-us-gov"
	case strings.HasPrefix(region, "cn-"):
		return "aws-cn"
	}
	return "aws"
}

// Plan ops.
const (
	OpCreate = "create" // a new profile, tagged
	OpAdopt  = "adopt"  // an existing tagged profile the store does not record (after a store loss)
	OpTag    = "tag"    // an existing profile without the gateway's tags (named by the gateway, or recorded): tagged, then recorded
	OpDelete = "delete" // a tagged profile nothing wants (--prune)
	OpKeep   = "keep"   // in place and recorded
	OpUnused = "unused" // a tagged profile nothing wants, kept without --prune
	OpForget = "forget" // a record of a profile nothing wants or that is gone
)

// Change is one line of a plan.
type Change struct {
	Op          string `json:"op"`
	Entitlement string `json:"entitlement"`
	Team        string `json:"team,omitempty"`
	Region      string `json:"region,omitempty"`
	ARN         string `json:"arn,omitempty"`
	Name        string `json:"name,omitempty"`
	Source      string `json:"source,omitempty"`
	Detail      string `json:"detail,omitempty"`
}

// Plan is what a sync would do.
type Plan struct {
	// Changes are done by Apply: creates, tags and deletes in AWS, adoptions
	// and forgotten records in the store.
	Changes []Change `json:"changes"`
	// Kept are profiles in place and recorded.
	Kept []Change `json:"kept"`
	// Unused are tagged profiles nothing wants, deleted with --prune.
	Unused []Change `json:"unused"`
	// Records are what the store records after Apply (the creates' ARNs are
	// filled in by Apply).
	Records []state.BillingProfile `json:"records"`

	wants    []Want
	tags     TagKeys
	recorded []state.BillingProfile
}

// PlanOptions configure NewPlan.
type PlanOptions struct {
	Tags TagKeys
	// Prune deletes tagged profiles nothing wants.
	Prune bool
}

// NewPlan compares the wanted profiles with those that exist and those the
// store records. A wanted profile is found, in order: the recorded one, if
// it still exists in the right region with the right model; a profile tagged
// for it (adopted: a store that lost its records gets them back instead of
// duplicates); a profile with the name the gateway gives it (tagged, then
// used). Otherwise it is created.
func NewPlan(wants []Want, existing []Existing, recorded []state.BillingProfile, o PlanOptions) *Plan {
	keys := o.Tags.withDefaults()
	p := &Plan{Changes: []Change{}, Kept: []Change{}, Unused: []Change{}, Records: []state.BillingProfile{}, wants: wants, tags: keys,
		recorded: recorded}
	byARN := make(map[string]*Existing, len(existing))
	byName := map[string]*Existing{}
	tagged := map[string][]*Existing{}
	for i := range existing {
		e := &existing[i]
		byARN[e.ARN] = e
		byName[e.Region+"/"+e.Name] = e
		if ent := e.Tags[keys.Entitlement]; ent != "" {
			k := ent + "/" + e.Tags[keys.Team]
			tagged[k] = append(tagged[k], e)
		}
	}
	rec := make(map[string]state.BillingProfile, len(recorded))
	for _, r := range recorded {
		rec[r.Key()] = r
	}
	matches := func(e *Existing, w Want) bool {
		return e != nil && e.Region == w.Region && (w.BaseModel == "" || e.BaseModel == "" || e.BaseModel == w.BaseModel)
	}
	used := map[string]bool{}
	wanted := map[string]bool{}
	for _, w := range wants {
		k := w.key()
		wanted[k] = true
		c := Change{Entitlement: w.Entitlement, Team: w.Team, Region: w.Region, Source: w.Source}
		var pick *Existing
		r, recordedOK := rec[k]
		if e := byARN[r.ARN]; recordedOK && !used[r.ARN] && matches(e, w) {
			pick = e
		}
		if pick == nil {
			cands := slices.Clone(tagged[tagKey(w, keys)])
			slices.SortFunc(cands, func(a, b *Existing) int { return strings.Compare(a.ARN, b.ARN) })
			for _, e := range cands {
				if !used[e.ARN] && matches(e, w) {
					pick = e
					break
				}
			}
		}
		name := ProfileName(w)
		if e := byName[w.Region+"/"+name]; pick == nil && e != nil && !used[e.ARN] && matches(e, w) {
			pick = e
		}
		if pick == nil {
			c.Op, c.Name = OpCreate, name
			if recordedOK {
				c.Detail = "the recorded profile " + r.ARN + " is gone or copies another model"
			}
			p.Changes = append(p.Changes, c)
			p.Records = append(p.Records, state.BillingProfile{Entitlement: w.Entitlement, Team: w.Team, Source: w.Source})
			continue
		}
		used[pick.ARN] = true
		c.ARN, c.Name = pick.ARN, pick.Name
		switch {
		case !hasTags(pick, w, keys):
			c.Op, c.Detail = OpTag, "has not the gateway's tags"
			p.Changes = append(p.Changes, c)
		case !recordedOK || r.ARN != pick.ARN:
			c.Op, c.Detail = OpAdopt, "tagged for it but not recorded"
			p.Changes = append(p.Changes, c)
		default:
			c.Op = OpKeep
			p.Kept = append(p.Kept, c)
		}
		p.Records = append(p.Records, state.BillingProfile{Entitlement: w.Entitlement, Team: w.Team, ARN: pick.ARN, Source: w.Source})
	}
	for _, r := range recorded {
		if !wanted[r.Key()] {
			p.Changes = append(p.Changes, Change{Op: OpForget, Entitlement: r.Entitlement, Team: r.Team, ARN: r.ARN,
				Detail: "no longer wanted: calls go to the foundation model"})
		}
	}
	var unused []*Existing
	for _, list := range tagged {
		for _, e := range list {
			if !used[e.ARN] {
				unused = append(unused, e)
			}
		}
	}
	slices.SortFunc(unused, func(a, b *Existing) int { return strings.Compare(a.ARN, b.ARN) })
	for _, e := range unused {
		c := Change{Op: OpUnused, Entitlement: e.Tags[keys.Entitlement], Team: e.Tags[keys.Team], Region: e.Region, ARN: e.ARN, Name: e.Name,
			Detail: "tagged by the gateway, wanted by no entitlement"}
		if o.Prune {
			c.Op = OpDelete
			p.Changes = append(p.Changes, c)
		} else {
			p.Unused = append(p.Unused, c)
		}
	}
	return p
}

// tagKey is the key a wanted profile's tags make.
func tagKey(w Want, keys TagKeys) string {
	if w.Team == "" {
		return w.Entitlement + "/"
	}
	return w.Entitlement + "/" + TagValue(w.Team)
}

func hasTags(e *Existing, w Want, keys TagKeys) bool {
	if e.Tags[keys.Entitlement] != w.Entitlement {
		return false
	}
	if w.Team == "" {
		return e.Tags[keys.Team] == ""
	}
	return e.Tags[keys.Team] == TagValue(w.Team)
}

// tagChars are the characters Bedrock allows in tag keys and values.
var tagChars = regexp.MustCompile(`[^a-zA-Z0-9\s._:/=+@-]`)

// TagValue is a team name as a tag value: characters Bedrock refuses in tag
// values become '_', and it is cut at 256 bytes.
func TagValue(team string) string {
	v := tagChars.ReplaceAllString(team, "_")
	if len(v) > 256 {
		v = v[:256]
	}
	return v
}

var nonSlug = regexp.MustCompile(`[^a-z0-9]+`)

// ProfileName is the name the gateway gives the profile of w: "bgw-", the
// entitlement and team as lowercase letters, digits and single dashes (cut
// to fit), and 8 hex digits of a hash of the entitlement, team and source,
// so names never collide and a profile of another model gets another name.
// Bedrock allows 64 characters of ([0-9a-zA-Z:.][ _-]?)+.
func ProfileName(w Want) string {
	slug := strings.Trim(nonSlug.ReplaceAllString(strings.ToLower(w.Entitlement+"-"+w.Team), "-"), "-")
	if len(slug) > 50 {
		slug = strings.TrimRight(slug[:50], "-")
	}
	sum := sha256.Sum256([]byte(w.Entitlement + "\x00" + w.Team + "\x00" + w.Source))
	return "bgw-" + slug + "-" + hex.EncodeToString(sum[:4])
}
