package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/bedrock-gateway/gateway/internal/authn"
	"github.com/bedrock-gateway/gateway/internal/sim"
	"github.com/bedrock-gateway/gateway/internal/state"
)

func runSim(ctx context.Context, args []string, env Env) error {
	fs := flag.NewFlagSet("sim", flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	listen := fs.String("listen", ":8081", "listen address")
	akid := fs.String("hub-access-key-id", env.Getenv("GATEWAY_SIM_ACCESS_KEY_ID"), "hub access key ID whose signatures the simulator verifies (env GATEWAY_SIM_ACCESS_KEY_ID); empty = accept unsigned requests")
	latency := fs.Duration("latency", 0, "delay before response headers")
	firstEvent := fs.Duration("first-event", 0, "delay before the first stream event")
	eventDelay := fs.Duration("event-delay", 0, "delay between stream events")
	outputTokens := fs.Int("output-tokens", 24, "output tokens per response (capped by the request's max tokens)")
	fault := fs.String("fault", "", "fault to inject at --fault-rate: throttle|internal|unavailable|timeout|model-error|midstream|reset")
	faultRate := fs.Float64("fault-rate", 0, "probability (0..1) of injecting --fault")
	seed := fs.Int64("seed", 1, "seed of fault decisions")
	orgFile := fs.String("organization", "", "state file whose organization the AWS Organizations API serves (empty: none)")
	fs.Usage = func() {
		fmt.Fprintf(env.Stderr, "Usage: gateway sim [flags]\n\nRuns the Bedrock Runtime simulator (and STS GetCallerIdentity, AWS Organizations and CloudWatch stand-ins, see below). The hub secret comes from GATEWAY_SIM_SECRET_ACCESS_KEY.\n\nFlags:\n")
		fs.PrintDefaults()
		fmt.Fprintf(env.Stderr, "\n%s\n", sim.Help())
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil // help was asked for and printed
		}
		return err
	}
	log := slog.New(slog.NewTextHandler(env.Stderr, nil))
	opts := sim.Options{Latency: *latency, FirstEvent: *firstEvent, EventDelay: *eventDelay, OutputTokens: *outputTokens,
		Fault: *fault, FaultRate: *faultRate, Seed: *seed, Logger: log}
	if *orgFile != "" {
		st, err := state.LoadFile(*orgFile)
		if err != nil {
			return err
		}
		opts.Organization = sim.OrganizationFromState(st.Organization)
		if err := opts.Organization.Check(); err != nil {
			return fmt.Errorf("--organization %s: %w", *orgFile, err) // refuse at start, not at the first call
		}
	}
	if *akid != "" {
		secret := env.Getenv("GATEWAY_SIM_SECRET_ACCESS_KEY")
		if secret == "" {
			return errors.New("--hub-access-key-id needs GATEWAY_SIM_SECRET_ACCESS_KEY")
		}
		lookup, err := authn.NewStaticLookup(&authn.Credential{ID: *akid, Account: "111111111111", Kind: "sigv4", Label: "hub", Secret: secret})
		if err != nil {
			return err
		}
		v := authn.NewVerifier(authn.Options{})
		opts.Verify = func(r *http.Request, body []byte) error { return authn.VerifyStatic(v, r, body, lookup) }
		opts.VerifyStream = authn.StreamVerifier(v, lookup)
		opts.VerifyOrganizations = sim.NewSigV4Check(sim.SigV4Check{Service: "organizations", Region: "us-east-1",
			Secrets: map[string]string{*akid: secret}})
		opts.VerifyCloudWatch = sim.NewSigV4Check(sim.SigV4Check{Service: "monitoring", PathPrefix: sim.CloudWatchPathPrefix,
			Secrets: map[string]string{*akid: secret}})
	} else {
		log.Warn("no --hub-access-key-id: signatures are not verified")
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true) // InvokeModelWithBidirectionalStream needs HTTP/2
	srv := &http.Server{Handler: sim.New(opts), ReadHeaderTimeout: 10 * time.Second, Protocols: &protocols}
	log.Info("simulator serving", "addr", ln.Addr().String())
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
