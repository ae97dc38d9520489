package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"go.opentelemetry.io/contrib/exporters/autoexport"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/bedrock-gateway/gateway/internal/asynclog"
	"github.com/bedrock-gateway/gateway/internal/cli"
	"github.com/bedrock-gateway/gateway/internal/config"
	"github.com/bedrock-gateway/gateway/internal/server"
	"github.com/bedrock-gateway/gateway/internal/sim"
)

// newLogger writes the log through an asynchronous, bounded buffer (package
// asynclog): requests never wait on write(2). The caller closes the
// returned writer once serving is over, which writes what is still buffered.
func newLogger(cfg *config.Serve, env Env) (*slog.Logger, *asynclog.Writer) {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	out := asynclog.New(asynclog.Options{Out: env.Stderr})
	if cfg.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(out, opts)), out
	}
	return slog.New(slog.NewJSONHandler(out, opts)), out
}

func serve(ctx context.Context, args []string, env Env) error {
	cfg, err := loadConfig("serve", "", args, env)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil // help was asked for and printed
		}
		var ue *cli.UsageError
		if errors.As(err, &ue) {
			return err
		}
		return fmt.Errorf("invalid configuration:\n%w", err)
	}
	log, logOut := newLogger(cfg, env)
	// Deferred first, so it runs last: every line logged up to the return,
	// the shutdown's own included, reaches stderr.
	defer logOut.Close()
	routeLibraryLogs(log)
	tracer, shutdownTracing, err := setupTracing(ctx, env)
	if err != nil {
		return err
	}
	defer shutdownTracing()
	var devCerts *devTLS
	if cfg.TLSSelfSigned {
		dir, err := os.MkdirTemp("", "bedrock-gateway-tls-")
		if err != nil {
			return fmt.Errorf("--tls-self-signed: %w", err)
		}
		// A new pair at every start: nothing to keep, nothing to leak.
		defer os.RemoveAll(dir)
		certs, err := generateDevTLS(dir, time.Now())
		if err != nil {
			return fmt.Errorf("--tls-self-signed: %w", err)
		}
		devCerts = &certs
		cfg.TLSCert, cfg.TLSKey = certs.CertFile, certs.KeyFile
	}
	srv, err := server.New(ctx, cfg, server.Deps{Logger: log, LookupEnv: env.LookupEnv, Tracer: tracer, LogDropped: logOut.Dropped})
	if err != nil {
		return err
	}
	// The banner promises a working endpoint: print it once /readyz would
	// say so (the state snapshot loaded), not while it still answers 503.
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for !srv.Ready() {
		select {
		case err := <-done:
			return err
		case <-t.C:
		}
	}
	printReady(env, cfg, srv, devCerts)
	return <-done
}

// setupTracing exports spans when the standard OTEL_* variables ask for it
// (OTLP over HTTP or gRPC); otherwise tracing is a no-op.
func setupTracing(ctx context.Context, env Env) (trace.Tracer, func(), error) {
	const name = "github.com/bedrock-gateway/gateway"
	enabled := env.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || env.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != "" ||
		(env.Getenv("OTEL_TRACES_EXPORTER") != "" && env.Getenv("OTEL_TRACES_EXPORTER") != "none")
	if !enabled || env.Getenv("OTEL_SDK_DISABLED") == "true" {
		return noop.NewTracerProvider().Tracer(name), func() {}, nil
	}
	exp, err := autoexport.NewSpanExporter(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("configuring OpenTelemetry export: %w", err)
	}
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(semconv.ServiceName("bedrock-gateway")))
	if err != nil {
		res = resource.Default()
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	return tp.Tracer(name), func() { _ = tp.Shutdown(context.Background()) }, nil
}

func printReady(env Env, cfg *config.Serve, srv *server.Server, devCerts *devTLS) {
	scheme := "http"
	if srv.TLS() {
		scheme = "https"
	}
	endpoint := scheme + "://" + localAddr(srv.DataAddr())
	fmt.Fprintf(env.Stdout, "\nBedrock Entitlement Gateway is serving Bedrock Runtime on %s (ops, metrics and admin API on http://%s).\n", endpoint, localAddr(srv.OpsAddr()))
	printConsole(env, cfg, srv)
	// caEnv is what a client needs to trust a generated certificate: the
	// AWS SDKs and the AWS CLI read AWS_CA_BUNDLE.
	caEnv := ""
	if devCerts != nil {
		fmt.Fprintf(env.Stdout, "TLS with a certificate generated for this run (--tls-self-signed); clients trust its CA file: AWS_CA_BUNDLE=%s\n", devCerts.CAFile)
		caEnv = " AWS_CA_BUNDLE=" + devCerts.CAFile
	}
	if cfg.Simulate {
		fmt.Fprintf(env.Stdout, "Other addresses: --listen and --ops-listen (with make: make run LISTEN=127.0.0.1:18080 OPS_LISTEN=127.0.0.1:19090); an address without a host, such as :8080, listens on every interface.\n")
	}
	printCloudWatchDemo(env, cfg, srv)
	cred, model, ok := srv.ExampleCall()
	if !ok {
		fmt.Fprintf(env.Stdout, "Point an AWS SDK's Bedrock Runtime endpoint at %s with a gateway-issued credential.\n\n", endpoint)
		return
	}
	fmt.Fprintf(env.Stdout, `
Try it (a Go program using the official AWS SDK, credentials of the example account %s):

  AWS_ACCESS_KEY_ID=%s AWS_SECRET_ACCESS_KEY=%s AWS_REGION=us-east-1%s \
    go run ./examples/converse -endpoint %s -model %s "Hello from a member account"

or with the AWS CLI, if installed:

  AWS_ACCESS_KEY_ID=%s AWS_SECRET_ACCESS_KEY=%s AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1%s \
    aws bedrock-runtime converse --endpoint-url %s --model-id %s \
    --messages '[{"role":"user","content":[{"text":"Hello"}]}]'

`, cred.Account, cred.AccessKeyID, cred.Secret, caEnv, endpoint, model, cred.AccessKeyID, cred.Secret, caEnv, endpoint, model)
	printIAMDemo(env, cfg, srv, cred.Account, model, endpoint, caEnv)
	printBillingDemo(env, srv, model)
}

// printBillingDemo shows, with --simulate, how to give an entitlement
// per-team application inference profiles in the simulator's Bedrock control
// plane (signed with the simulator's throwaway hub key).
func printBillingDemo(env Env, srv *server.Server, model string) {
	akid, secret, ok := srv.SimulatorHubKey()
	if !ok {
		return
	}
	fmt.Fprintf(env.Stdout, `Per-team cost in AWS Billing (docs/billing.md): give the entitlement an application inference
profile per team, created in the simulator's Bedrock control plane with its hub key; calls then go to
their team's profile:

  GATEWAY_ADMIN_URL=http://%s go run ./cmd/gateway entitlements update %s --billing-profiles per_team
  AWS_ACCESS_KEY_ID=%s AWS_SECRET_ACCESS_KEY=%s AWS_REGION=us-east-1 GATEWAY_ADMIN_URL=http://%s \
    go run ./cmd/gateway billing sync --apply --bedrock-endpoint %s

`, localAddr(srv.OpsAddr()), model, akid, secret, localAddr(srv.OpsAddr()), srv.SimulatorURL())
}

// printCloudWatchDemo shows, with --simulate and --cloudwatch-namespace, how
// to read what the gateway publishes and reconcile the ledger against the
// simulator's own AWS/Bedrock counts, with its throwaway hub key.
func printCloudWatchDemo(env Env, cfg *config.Serve, srv *server.Server) {
	akid, secret, ok := srv.SimulatorHubKey()
	if !cfg.Simulate || cfg.CloudWatchNamespace == "" || !ok {
		return
	}
	fmt.Fprintf(env.Stdout, `CloudWatch: every %s this gateway publishes namespace %s to the simulator, which also
counts its own AWS/Bedrock usage. Compare the ledger with it (the simulator's throwaway hub key;
your GATEWAY_ADMIN_TOKEN):

  AWS_ACCESS_KEY_ID=%s AWS_SECRET_ACCESS_KEY=%s AWS_REGION=us-east-1 \
    go run ./cmd/gateway usage reconcile --admin-url http://%s --cloudwatch-endpoint %s

`, cfg.CloudWatchInterval, cfg.CloudWatchNamespace, akid, secret, localAddr(srv.OpsAddr()), srv.SimulatorURL())
}

// printConsole names the web console's URL. With --simulate and a single
// admin token in the environment (make run), it also names that token to
// sign in with, as the example credential's secret is printed: a try-out
// gateway's, never a real deployment's.
func printConsole(env Env, cfg *config.Serve, srv *server.Server) {
	if !srv.ConsoleEnabled() {
		return
	}
	url := "http://" + localAddr(srv.OpsAddr()) + "/console/"
	if cfg.Simulate && len(cfg.AdminTokens) == 1 && env.Getenv("GATEWAY_ADMIN_TOKEN") != "" {
		_, token, _ := config.SplitToken(cfg.AdminTokens[0])
		fmt.Fprintf(env.Stdout, "Web console: %s (sign in with the admin token %s)\n", url, token)
		return
	}
	fmt.Fprintf(env.Stdout, "Web console: %s (sign in with an admin token)\n", url)
}

// printIAMDemo shows, with --simulate and --iam-identity over TLS, a call
// with an IAM identity token minted for a built-in identity of the
// simulator's STS (gateway sim -h lists them) in the example account.
func printIAMDemo(env Env, cfg *config.Serve, srv *server.Server, account, model, endpoint, caEnv string) {
	if !cfg.Simulate || !cfg.IAMIdentity || !srv.TLS() || srv.GatewayID() == "" {
		return
	}
	stsEndpoint := cfg.STSEndpoint
	if stsEndpoint == "" {
		stsEndpoint = srv.SimulatorURL()
	}
	for _, id := range sim.Identities() {
		if id.Account != account || id.SessionToken != "" {
			continue // an IAM user: no session token to copy
		}
		fmt.Fprintf(env.Stdout, `or with an AWS identity instead of a gateway-issued key: mint an IAM identity token (here as
the simulator's IAM user %s), then call with it as a bearer token:

  eval "$(AWS_ACCESS_KEY_ID=%s AWS_SECRET_ACCESS_KEY=%s AWS_REGION=us-east-1 \
    go run ./cmd/gateway token --gateway-id %s --sts-endpoint %s --export)"
  AWS_REGION=us-east-1%s go run ./examples/converse -endpoint %s -model %s "Hello from my IAM identity"

`, id.Arn, id.AccessKeyID, id.SecretAccessKey, srv.GatewayID(), stsEndpoint, caEnv, endpoint, model)
		return
	}
}

// localAddr turns a wildcard listen address into one a local client can dial.
func localAddr(addr string) string {
	if strings.HasPrefix(addr, "[::]:") || strings.HasPrefix(addr, "0.0.0.0:") || strings.HasPrefix(addr, ":") {
		return "127.0.0.1" + addr[strings.LastIndexByte(addr, ':'):]
	}
	return addr
}
