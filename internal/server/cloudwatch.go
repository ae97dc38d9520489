package server

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"

	cwpub "github.com/bedrock-gateway/gateway/internal/cloudwatch"
	"github.com/bedrock-gateway/gateway/internal/metering"
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
	s.metrics.SetObserver(publisherObserver{p})
	return p, nil
}

// publisherObserver hands the publisher what metering records of every
// finished request.
type publisherObserver struct{ p *cwpub.Publisher }

func (o publisherObserver) ObserveRequest(r metering.Request) {
	o.p.Observe(cwpub.Call{
		Entitlement: r.Entitlement, Team: r.Team, Account: r.Account, Op: r.Op,
		Code: r.Code, UpstreamStatus: r.UpstreamStatus, Rejection: r.Rejection,
		Duration: r.Duration, TTFB: r.TTFB, Usage: r.Usage, HasUsage: r.HasUsage,
	})
}
