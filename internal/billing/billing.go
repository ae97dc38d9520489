// Package billing gives each entitlement (or each team of one) its own
// application inference profile in the hub account, so that AWS Billing,
// Cost Explorer and AWS Budgets can tell who used what: Bedrock bills a
// profile like the model it copies and carries the profile's cost-allocation
// tags into the cost data. It reads and writes the profiles through the
// Bedrock control-plane API (aws-sdk-go-v2/service/bedrock), plans what an
// entitlement's billing.profiles setting wants against what exists, and
// applies the plan. Recording the profile ARNs in the gateway's store is the
// caller's (the admin API from the CLI, the store from serve).
package billing

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	bedrockcp "github.com/aws/aws-sdk-go-v2/service/bedrock"
	cptypes "github.com/aws/aws-sdk-go-v2/service/bedrock/types"
	"github.com/bedrock-gateway/gateway/internal/sdkhttp"
)

// API is the part of the Bedrock control-plane client a sync uses.
type API interface {
	bedrockcp.ListInferenceProfilesAPIClient
	CreateInferenceProfile(context.Context, *bedrockcp.CreateInferenceProfileInput, ...func(*bedrockcp.Options)) (*bedrockcp.CreateInferenceProfileOutput, error)
	DeleteInferenceProfile(context.Context, *bedrockcp.DeleteInferenceProfileInput, ...func(*bedrockcp.Options)) (*bedrockcp.DeleteInferenceProfileOutput, error)
	TagResource(context.Context, *bedrockcp.TagResourceInput, ...func(*bedrockcp.Options)) (*bedrockcp.TagResourceOutput, error)
	ListTagsForResource(context.Context, *bedrockcp.ListTagsForResourceInput, ...func(*bedrockcp.Options)) (*bedrockcp.ListTagsForResourceOutput, error)
}

// Default tag keys. They are the cost-allocation tags finance activates in
// the Billing console (docs/billing.md).
const (
	DefaultEntitlementTag = "bedrock-gateway:entitlement"
	DefaultTeamTag        = "bedrock-gateway:team"
)

// TagKeys name the tags a profile carries.
type TagKeys struct {
	Entitlement, Team string
}

func (k TagKeys) withDefaults() TagKeys {
	if k.Entitlement == "" {
		k.Entitlement = DefaultEntitlementTag
	}
	if k.Team == "" {
		k.Team = DefaultTeamTag
	}
	return k
}

// Clients returns the control-plane client of a region (profiles are
// regional: each lives where its entitlement's calls go).
type Clients func(region string) API

// NewClients returns Clients built from cfg (credentials, retries) for each
// region, all at endpoint when it is set (a VPC endpoint, the simulator);
// otherwise the SDK resolves the endpoint, honouring AWS_ENDPOINT_URL and
// AWS_ENDPOINT_URL_BEDROCK as config.LoadDefaultConfig read them into cfg.
func NewClients(cfg aws.Config, endpoint string) Clients {
	var mu sync.Mutex
	clients := map[string]API{}
	return func(region string) API {
		mu.Lock()
		defer mu.Unlock()
		if c, ok := clients[region]; ok {
			return c
		}
		c := bedrockcp.NewFromConfig(cfg, func(o *bedrockcp.Options) {
			if region != "" {
				o.Region = region
			}
			if endpoint != "" {
				o.BaseEndpoint = aws.String(endpoint)
			}
			if o.HTTPClient == nil {
				o.HTTPClient = awshttp.NewBuildableClient()
			}
			o.HTTPClient = sdkhttp.Buffering(o.HTTPClient)
		})
		clients[region] = c
		return c
	}
}

// Existing is an application inference profile of the hub, as listed.
type Existing struct {
	ARN, ID, Name, Region string
	// BaseModel is the foundation model it answers as (its first model's ARN
	// resource).
	BaseModel string
	// Tags are its tags (only read for profiles named by the gateway or
	// carrying the entitlement tag; see Read).
	Tags map[string]string
}

// Read lists the application inference profiles of each region, all pages,
// and the tags of each (the list does not carry them).
func Read(ctx context.Context, clients Clients, regions []string) ([]Existing, error) {
	var out []Existing
	seen := map[string]bool{}
	for _, region := range regions {
		c := clients(region)
		p := bedrockcp.NewListInferenceProfilesPaginator(c, &bedrockcp.ListInferenceProfilesInput{TypeEquals: cptypes.InferenceProfileTypeApplication})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				return nil, fmt.Errorf("listing the inference profiles of %s: %w", region, err)
			}
			for _, s := range page.InferenceProfileSummaries {
				if seen[aws.ToString(s.InferenceProfileArn)] {
					continue // listed by another region's endpoint too (a pinned endpoint)
				}
				seen[aws.ToString(s.InferenceProfileArn)] = true
				e := Existing{ARN: aws.ToString(s.InferenceProfileArn), ID: aws.ToString(s.InferenceProfileId),
					Name: aws.ToString(s.InferenceProfileName), Region: region}
				if len(s.Models) > 0 {
					m := aws.ToString(s.Models[0].ModelArn)
					e.BaseModel = m[strings.LastIndexByte(m, '/')+1:]
				}
				out = append(out, e)
			}
		}
		for i := range out {
			if out[i].Region != region {
				continue
			}
			tags, err := c.ListTagsForResource(ctx, &bedrockcp.ListTagsForResourceInput{ResourceARN: aws.String(out[i].ARN)})
			if err != nil {
				return nil, fmt.Errorf("listing the tags of %s: %w", out[i].ARN, err)
			}
			out[i].Tags = make(map[string]string, len(tags.Tags))
			for _, t := range tags.Tags {
				out[i].Tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
			}
		}
	}
	return out, nil
}

// errNoClients is returned when a sync is asked to run without clients.
var errNoClients = errors.New("billing: no Bedrock control-plane clients")
