package billing

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	bedrockcp "github.com/aws/aws-sdk-go-v2/service/bedrock"
	cptypes "github.com/aws/aws-sdk-go-v2/service/bedrock/types"

	"github.com/bedrock-gateway/gateway/internal/state"
)

// Record writes the profile records (the admin API's PUT
// /admin/v1/billing/profiles, or the store directly).
type Record func(ctx context.Context, records []state.BillingProfile) error

// Apply carries the plan out: creates (tagged), tags and deletes through the
// control plane, then records the profiles when the records change. A failed
// AWS call stops the rest; what was done before it is still recorded, so a
// rerun continues where this one stopped (it finds the created profiles by
// their tags). It reports whether anything was written.
func (p *Plan) Apply(ctx context.Context, clients Clients, record Record) (bool, error) {
	if clients == nil {
		return false, errNoClients
	}
	records := slices.Clone(p.Records)
	wrote := false
	done := map[int]bool{}
	var applyErr error
	for i, c := range p.Changes {
		var err error
		switch c.Op {
		case OpCreate:
			var arn string
			arn, err = p.create(ctx, clients(c.Region), c)
			if err == nil {
				p.Changes[i].ARN = arn
				for j := range records {
					if records[j].Entitlement == c.Entitlement && records[j].Team == c.Team {
						records[j].ARN = arn
					}
				}
			}
		case OpTag:
			_, err = clients(c.Region).TagResource(ctx, &bedrockcp.TagResourceInput{ResourceARN: aws.String(c.ARN), Tags: p.tagsOf(c)})
		case OpDelete:
			_, err = clients(c.Region).DeleteInferenceProfile(ctx, &bedrockcp.DeleteInferenceProfileInput{InferenceProfileIdentifier: aws.String(c.ARN)})
		default:
			continue // adopt and forget only change the records
		}
		if err != nil {
			applyErr = fmt.Errorf("%s profile of %s: %w", c.Op, describe(c), err)
			break
		}
		done[i] = true
		wrote = true
	}
	// Never record a create that did not happen, nor a tag that failed.
	records = slices.DeleteFunc(records, func(r state.BillingProfile) bool { return r.ARN == "" })
	if applyErr != nil {
		records = slices.DeleteFunc(records, func(r state.BillingProfile) bool { return p.pendingTag(r, done) })
		records = p.keepRecorded(records)
	}
	state.SortBillingProfiles(records)
	if !slices.Equal(records, sortedCopy(p.recorded)) {
		if err := record(ctx, records); err != nil {
			return wrote, errors.Join(applyErr, fmt.Errorf("recording the profiles: %w", err))
		}
		wrote = true
	}
	return wrote, applyErr
}

// pendingTag reports whether r is the record of a profile whose tagging was
// planned but not done (Apply stopped before or at it).
func (p *Plan) pendingTag(r state.BillingProfile, done map[int]bool) bool {
	for i, c := range p.Changes {
		if c.Op == OpTag && c.ARN == r.ARN && !done[i] {
			return true
		}
	}
	return false
}

// keepRecorded adds back the old records of the keys a failed apply leaves
// without one, so that calls keep their profile.
func (p *Plan) keepRecorded(records []state.BillingProfile) []state.BillingProfile {
	have := map[string]bool{}
	for _, r := range records {
		have[r.Key()] = true
	}
	for _, r := range p.recorded {
		if !have[r.Key()] {
			records = append(records, r)
		}
	}
	return records
}

func sortedCopy(ps []state.BillingProfile) []state.BillingProfile {
	out := slices.Clone(ps)
	state.SortBillingProfiles(out)
	if out == nil {
		out = []state.BillingProfile{}
	}
	return out
}

func describe(c Change) string {
	if c.Team == "" {
		return "entitlement " + c.Entitlement
	}
	return "entitlement " + c.Entitlement + " team " + c.Team
}

func (p *Plan) tagsOf(c Change) []cptypes.Tag {
	tags := []cptypes.Tag{{Key: aws.String(p.tags.Entitlement), Value: aws.String(c.Entitlement)}}
	if c.Team != "" {
		tags = append(tags, cptypes.Tag{Key: aws.String(p.tags.Team), Value: aws.String(TagValue(c.Team))})
	}
	return tags
}

func (p *Plan) create(ctx context.Context, c API, ch Change) (string, error) {
	// The token makes a retried create (the SDK's, or a rerun after a lost
	// answer) return the same profile instead of a second one.
	sum := sha256.Sum256([]byte(ch.Name + "\x00" + ch.Source))
	out, err := c.CreateInferenceProfile(ctx, &bedrockcp.CreateInferenceProfileInput{
		InferenceProfileName: aws.String(ch.Name),
		ModelSource:          &cptypes.InferenceProfileModelSourceMemberCopyFrom{Value: ch.Source},
		Tags:                 p.tagsOf(ch),
		ClientRequestToken:   aws.String(hex.EncodeToString(sum[:16])),
	})
	if err != nil {
		return "", err
	}
	arn := aws.ToString(out.InferenceProfileArn)
	if arn == "" {
		return "", errors.New("the answer carries no ARN")
	}
	return arn, nil
}
