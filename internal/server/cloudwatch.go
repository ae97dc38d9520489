package server

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"

	cwpub "github.com/bedrock-gateway/gateway/internal/cloudwatch"
)

// newPublisher builds the CloudWatch publisher (--cloudwatch-namespace),
// signing with the hub's credentials in the upstream region, and hooks it to
// the metrics every finished request passes through; nil when it is off.
func (s *Server) newPublisher(ctx context.Context, region string, creds aws.CredentialsProvider) (*cwpub.Publisher, error) {
	cfg := s.cfg
	if cfg.CloudWatchNamespace == "" {
		return nil, nil
	}
	endpoint := cfg.CloudWatchEndpoint
	if endpoint == "" && cfg.Simulate {
		endpoint = s.simURL // the simulator serves CloudWatch too
	}
	client, err := cwpub.NewClient(ctx, cwpub.ClientOptions{Region: region, Credentials: creds, Endpoint: endpoint, MaxAttempts: 1})
	if err != nil {
		return nil, fmt.Errorf("cloudwatch client: %w", err)
	}
	p, err := cwpub.New(cwpub.Options{
		Client: client, Namespace: cfg.CloudWatchNamespace, Interval: cfg.CloudWatchInterval,
		AccountDimension: cfg.CloudWatchAccountDimension,
		Logger:           s.log.With("component", "cloudwatch"),
	})
	if err != nil {
		return nil, err
	}
	if err := s.metrics.Registry.Register(p); err != nil {
		return nil, fmt.Errorf("registering CloudWatch metrics: %w", err)
	}
	s.metrics.SetObserver(p)
	return p, nil
}
