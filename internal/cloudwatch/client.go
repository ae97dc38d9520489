package cloudwatch

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
)

// ClientOptions configure NewClient.
type ClientOptions struct {
	// Region is the CloudWatch region; empty: the AWS config chain's, else
	// us-east-1.
	Region string
	// Credentials sign the calls; nil: the default AWS credential chain.
	Credentials aws.CredentialsProvider
	// Endpoint (--cloudwatch-endpoint) replaces AWS's URL; empty: the SDK's
	// own resolution, which honours AWS_ENDPOINT_URL_CLOUDWATCH and
	// AWS_ENDPOINT_URL (and the shared config's endpoint settings).
	Endpoint string
	// HTTPClient sends the calls; nil: the SDK's.
	HTTPClient aws.HTTPClient
	// MaxAttempts is the SDK's attempts per call; 0: the SDK's default. The
	// publisher uses 1: it retries batches itself, with its own bound.
	MaxAttempts int
}

// NewClient builds the official CloudWatch client from the AWS config chain
// (so the standard endpoint variables apply), with o's overrides.
func NewClient(ctx context.Context, o ClientOptions) (*cloudwatch.Client, error) {
	var load []func(*awsconfig.LoadOptions) error
	if o.Region != "" {
		load = append(load, awsconfig.WithRegion(o.Region))
	}
	if o.Credentials != nil {
		load = append(load, awsconfig.WithCredentialsProvider(o.Credentials))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, load...)
	if err != nil {
		return nil, fmt.Errorf("loading AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	return cloudwatch.NewFromConfig(cfg, func(co *cloudwatch.Options) {
		if o.Endpoint != "" {
			co.BaseEndpoint = aws.String(o.Endpoint)
		}
		if o.HTTPClient != nil {
			co.HTTPClient = o.HTTPClient
		}
		if o.MaxAttempts > 0 {
			co.RetryMaxAttempts = o.MaxAttempts
		}
	}), nil
}
