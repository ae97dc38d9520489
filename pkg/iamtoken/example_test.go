package iamtoken_test

import (
	"context"
	"fmt"
	"log"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"

	"github.com/bedrock-gateway/gateway/pkg/iamtoken"
)

// A Bedrock Runtime client that calls the gateway with the application's own
// AWS identity: the provider re-mints the token before it expires.
func ExampleNewTokenProvider() {
	ctx := context.Background()
	cfg, err := config.LoadDefaultConfig(ctx) // the standard credential chain
	if err != nil {
		log.Fatal(err)
	}
	client := bedrockruntime.NewFromConfig(cfg, func(o *bedrockruntime.Options) {
		o.BaseEndpoint = aws.String("https://gateway.example.com")
		o.BearerAuthTokenProvider = iamtoken.NewTokenProvider(cfg, iamtoken.Options{GatewayID: "bgw-o-abc123def4"})
		// Without this, a client that also has AWS credentials signs SigV4.
		o.AuthSchemePreference = []string{"httpBearerAuth"}
	})
	_ = client
}

// A one-off token, for AWS_BEARER_TOKEN_BEDROCK.
func ExampleMint() {
	ctx := context.Background()
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		log.Fatal(err)
	}
	token, err := iamtoken.Mint(ctx, cfg, iamtoken.Options{GatewayID: "bgw-o-abc123def4"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("export AWS_BEARER_TOKEN_BEDROCK=" + token)
}
