package billing

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/bedrock-gateway/gateway/internal/sim"
	"github.com/bedrock-gateway/gateway/internal/state"
)

// TestClientsHonourServiceEndpoint: with no endpoint given, the clients go
// where the AWS configuration says for service bedrock (here a shared config
// file's services section, the file form of AWS_ENDPOINT_URL_BEDROCK), as
// config.LoadDefaultConfig reads it.
func TestClientsHonourServiceEndpoint(t *testing.T) {
	t.Parallel()
	s := sim.New(sim.Options{})
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	path := filepath.Join(t.TempDir(), "config")
	doc := fmt.Sprintf("[profile billing-test]\nservices = local\n\n[services local]\nbedrock =\n  endpoint_url = %s\n", srv.URL)
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.LoadDefaultConfig(t.Context(),
		config.WithSharedConfigFiles([]string{path}), config.WithSharedCredentialsFiles([]string{}),
		config.WithSharedConfigProfile("billing-test"), config.WithRegion("us-east-1"),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("AKID", "SECRET", "")),
		config.WithRetryer(func() aws.Retryer { return aws.NopRetryer{} }))
	if err != nil {
		t.Fatal(err)
	}
	plan, _, err := Sync(t.Context(), SyncOptions{Clients: NewClients(cfg, ""), Region: "us-east-1",
		State: parseState(t, testState), Apply: true, Record: func(context.Context, []state.BillingProfile) error { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Changes) != 3 || len(s.Profiles()) != 3 {
		t.Fatalf("the profiles were not made at the configured endpoint: %d changes, %d profiles", len(plan.Changes), len(s.Profiles()))
	}
}
