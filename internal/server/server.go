// Package server wires the gateway together for `gateway serve`: Redis, the state
// store and its snapshot, quota, the proxy, the data and ops listeners, and the
// graceful drain on shutdown.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/url"
	"os"
	"reflect"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/trace"

	"github.com/bedrock-gateway/gateway/internal/admin"
	"github.com/bedrock-gateway/gateway/internal/authn"
	"github.com/bedrock-gateway/gateway/internal/authz"
	"github.com/bedrock-gateway/gateway/internal/bedrock"
	"github.com/bedrock-gateway/gateway/internal/billing"
	cwpub "github.com/bedrock-gateway/gateway/internal/cloudwatch"
	"github.com/bedrock-gateway/gateway/internal/config"
	"github.com/bedrock-gateway/gateway/internal/console"
	"github.com/bedrock-gateway/gateway/internal/metering"
	"github.com/bedrock-gateway/gateway/internal/opsauth"
	"github.com/bedrock-gateway/gateway/internal/orgsync"
	"github.com/bedrock-gateway/gateway/internal/proxy"
	"github.com/bedrock-gateway/gateway/internal/quota"
	"github.com/bedrock-gateway/gateway/internal/report"
	"github.com/bedrock-gateway/gateway/internal/sim"
	"github.com/bedrock-gateway/gateway/internal/state"
	"github.com/bedrock-gateway/gateway/internal/store"
)

// Deps are what the environment provides.
type Deps struct {
	Logger    *slog.Logger
	LookupEnv func(string) (string, bool)
	// Redis, when set, is used instead of connecting per the config (tests).
	Redis redis.UniversalClient
	// Upstream overrides the upstream URL and hub credentials (tests).
	UpstreamURL   string
	UpstreamCreds aws.CredentialsProvider
	// Tracer records spans; nil is a no-op.
	Tracer trace.Tracer
	// LogDropped counts the log lines dropped because the log output could
	// not keep up (asynclog.Writer.Dropped); nil when logging is synchronous.
	LogDropped func() uint64
}

// Server is a running gateway.
type Server struct {
	cfg     *config.Serve
	log     *slog.Logger
	metrics *metering.Metrics
	rdb     redis.UniversalClient
	closers []func()

	store    *store.Store
	syncer   *store.Syncer
	beat     *store.Heartbeat
	limiter  *quota.Limiter
	notifier *metering.Notifier
	reports  *report.Reports
	proxy    *proxy.Handler
	snap     atomic.Pointer[authz.Snapshot]

	data, ops      *http.Server
	dataLn, opsLn  net.Listener
	simURL         string
	simHub         [2]string         // with --simulate: the simulator's hub access key ID and secret
	orgSync        *orgsync.Periodic // nil unless --org-sync-interval
	billingSync    *billing.Periodic // nil unless --billing-sync-interval
	profiles       profileTable      // recorded application inference profiles
	awsCfg         aws.Config        // the hub's AWS configuration (credentials, region, endpoint settings)
	publisher      *cwpub.Publisher  // nil unless --cloudwatch-namespace
	draining       atomic.Bool
	tls            bool
	bootstrapState *state.State
	embeddedRedis  bool
	wiped          atomic.Bool
}

// redisTimeout bounds every Redis call: --redis-timeout, or more with the
// embedded Redis (redis.go), unless a test injected its own client.
func (s *Server) redisTimeout() time.Duration {
	if s.embeddedRedis {
		return redisTimeout(s.cfg)
	}
	return s.cfg.RedisTimeout
}

// setWiped hears from the syncer whether the store lost its data.
func (s *Server) setWiped(wiped bool) {
	s.wiped.Store(wiped)
	s.metrics.SetStoreWiped(wiped)
	if s.limiter != nil {
		s.limiter.SetWiped(wiped)
	}
}

// Current implements proxy.Snapshots.
func (s *Server) Current() *authz.Snapshot { return s.snap.Load() }

// DataAddr is the data listener's address.
func (s *Server) DataAddr() string { return s.dataLn.Addr().String() }

// OpsAddr is the ops listener's address.
func (s *Server) OpsAddr() string { return s.opsLn.Addr().String() }

// TLS reports whether the data listener serves TLS.
func (s *Server) TLS() bool { return s.tls }

// SimulatorURL is the in-process simulator's URL with --simulate, else "".
func (s *Server) SimulatorURL() string { return s.simURL }

// SimulatorHubKey is, with --simulate, the hub key the in-process simulator
// verifies (a throwaway generated at start, for the simulator only), so that
// make run users can call its control plane (gateway billing sync); ok false
// otherwise.
func (s *Server) SimulatorHubKey() (akid, secret string, ok bool) {
	return s.simHub[0], s.simHub[1], s.simHub[0] != ""
}

// Limiter exposes the quota limiter (tests flush settlements).
func (s *Server) Limiter() *quota.Limiter { return s.limiter }

// Metrics exposes the metric families.
func (s *Server) Metrics() *metering.Metrics { return s.metrics }

// New builds the gateway and opens its listeners; Run serves.
func New(ctx context.Context, cfg *config.Serve, deps Deps) (_ *Server, err error) {
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.LookupEnv == nil {
		deps.LookupEnv = os.LookupEnv
	}
	s := &Server{cfg: cfg, log: deps.Logger}
	defer func() {
		if err != nil {
			// Stop what started before the failure (their goroutines too).
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if s.limiter != nil {
				_ = s.limiter.Close(ctx)
			}
			if s.notifier != nil {
				_ = s.notifier.Close(ctx)
			}
			s.close()
		}
	}()
	s.metrics = metering.NewMetrics(metering.Options{DropAccountLabel: cfg.MetricsDropAccount, LogDropped: deps.LogDropped})
	prices, err := metering.LoadPrices(cfg.PricesFile)
	if err != nil {
		return nil, fmt.Errorf("loading --prices-file: %w", err)
	}
	if err := s.metrics.RegisterPrices(prices); err != nil {
		return nil, fmt.Errorf("registering prices: %w", err)
	}
	loc, err := time.LoadLocation(cfg.TimeZone)
	if err != nil {
		return nil, fmt.Errorf("loading time zone: %w", err)
	}
	maxOutput, err := bedrock.LoadMaxOutput(cfg.ModelMaxOutputFile)
	if err != nil {
		return nil, fmt.Errorf("loading --model-max-output-file: %w", err)
	}

	// Redis.
	if deps.Redis != nil {
		s.rdb = deps.Redis
	} else {
		rdb, stop, err := newRedis(cfg, s.log)
		if err != nil {
			return nil, err
		}
		// Counted on the clients it creates only: an injected client may be
		// shared, and hooks are not added safely while it is in use.
		rdb.AddHook(roundTripHook{count: s.metrics.RedisRoundTrip})
		s.rdb = rdb
		s.embeddedRedis = cfg.RedisURL == ""
		s.closers = append(s.closers, stop)
	}

	// State store and the snapshot every request is decided against.
	s.store, err = store.New(store.Options{Client: s.rdb, Logger: s.log})
	if err != nil {
		return nil, fmt.Errorf("opening state store: %w", err)
	}
	if err := s.checkTimeZone(ctx, loc); err != nil {
		return nil, err
	}
	if cfg.Bootstrap != "" {
		if err := s.bootstrap(ctx, cfg.Bootstrap, deps.LookupEnv); err != nil {
			return nil, err
		}
	}
	// Load the state once now, so the replica is ready as soon as it listens;
	// the syncer keeps it current from then on.
	if st, version, err := s.store.Load(ctx); err != nil {
		s.log.Warn("loading state (will retry)", "error", err)
	} else if err := s.applySnapshot(st, version); err != nil {
		return nil, err
	} else if len(st.Entitlements) == 0 {
		s.log.Warn("the state has no entitlements yet: every call will be denied until one is shared (gateway apply -f state.yaml, or --bootstrap)")
	}
	s.syncer = store.NewSyncer(store.SyncOptions{Store: s.store, Logger: s.log, Apply: s.applySnapshot, OnWiped: s.setWiped})
	// The heartbeat reports the version this replica serves (so an admin sees
	// a change in force everywhere) and counts the live replicas (lease sizing).
	s.beat, err = s.store.NewHeartbeat(store.HeartbeatOptions{Applied: s.appliedVersion, Version: buildVersion(),
		Timeout: s.redisTimeout(), Logger: s.log})
	if err != nil {
		return nil, err
	}

	// Budget alerts: counted, logged and (with a URL) POSTed, signed, with retries.
	s.notifier = metering.NewNotifier(metering.NotifierOptions{URL: cfg.AlertWebhookURL, Secret: cfg.AlertWebhookSecret, Logger: s.log, Metrics: s.metrics})

	// Quota.
	s.limiter, err = quota.New(quota.Options{
		Client: s.rdb, Location: loc, ReservationTTL: cfg.ReservationTTL, Timeout: s.redisTimeout(),
		Logger: s.log, SpillFile: cfg.SpillFile, FailOpenRate: cfg.FailOpenRate,
		UsageStreamMaxLen: cfg.UsageStreamMaxLen,
		OnAlert:           s.notifier.Alert,

		OnReservationExpired: s.metrics.ReservationExpired, // gateway_reservations_expired_total
		// Lease sizing divides what is left of a cap among the live replicas.
		Leases: quota.LeaseOptions{Enabled: cfg.QuotaLeases, Replicas: s.beat},
	})
	if err != nil {
		return nil, fmt.Errorf("starting quota limiter: %w", err)
	}
	if cfg.QuotaLeases {
		err := s.metrics.RegisterLeases(func() metering.LeaseCounts {
			st := s.limiter.LeaseStats()
			return metering.LeaseCounts{AcquiredOnRequest: st.Acquired - st.Ahead, AcquiredAhead: st.Ahead,
				Returned: st.Returned, AdmittedLease: st.Admitted, PerRequest: st.PerRequest}
		})
		if err != nil {
			return nil, fmt.Errorf("registering quota lease metrics: %w", err)
		}
	}
	s.reports = newReports(s.limiter, s.snap.Load, prices, loc, s.rdb)

	// Upstream.
	upstream, region, creds, err := s.upstream(ctx, deps)
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(upstream)
	if err != nil {
		return nil, fmt.Errorf("parsing upstream endpoint: %w", err)
	}
	if s.orgSync, err = s.newOrgSync(region, creds); err != nil {
		return nil, err
	}
	if s.publisher, err = s.newPublisher(ctx, region, creds); err != nil {
		return nil, err
	}
	if s.billingSync, err = s.newBillingSync(s.awsCfg, region); err != nil {
		return nil, err
	}
	billingMetrics, err := metering.NewBillingMetrics(s.metrics.Registry)
	if err != nil {
		return nil, err
	}
	var iamVerifier *authn.IAMVerifier
	if cfg.IAMIdentity {
		iamVerifier = s.iamVerifier()
	}
	s.proxy, err = proxy.New(proxy.Options{
		Upstream: u, Region: region, Credentials: creds,
		// Entitlements naming another region go to that region's endpoint,
		// unless the operator pinned one upstream endpoint.
		PerEntitlementRegion: cfg.UpstreamEndpoint == "" && !cfg.Simulate && deps.UpstreamURL == "",
		Transport:            proxy.NewTransport(proxy.TransportOptions{ConnectTimeout: cfg.ConnectTimeout, IdleTimeout: cfg.IdleTimeout}),
		HeaderTimeout:        cfg.HeaderTimeout,
		DrainTimeout:         cfg.DrainTimeout,
		MaxBodyBytes:         cfg.MaxBodyBytes,
		DefaultMaxOutput:     cfg.DefaultMaxOutput,
		Snapshots:            s,
		Verifier:             authn.NewVerifier(authn.Options{}),
		Quota:                &limiterQuota{Limiter: s.limiter, Metrics: s.metrics, Logger: s.log},
		AsyncOwners:          store.NewAsyncOwners(store.AsyncOwnersOptions{Client: s.rdb, Timeout: s.redisTimeout()}),
		Metrics:              s.metrics,
		Tracer:               deps.Tracer,
		Logger:               s.log,
		TrustForwardedFor:    cfg.TrustedProxyHeaders,
		MaxOutput:            maxOutput,
		BodyReadTimeout:      cfg.BodyReadTimeout,
		MaxInflightBodyBytes: cfg.MaxInflightBody,
		BehindTLSProxy:       cfg.BehindTLSProxy,
		IAMIdentity:          iamVerifier,
		GatewayID:            cfg.GatewayID,
		Profiles:             &s.profiles,
		OnProfileMissing:     billingMetrics.ProfileMissing,
	})
	if err != nil {
		return nil, err
	}

	// Listeners.
	if err := s.listen(); err != nil {
		return nil, err
	}
	return s, nil
}

// appliedVersion is the state version of the snapshot this replica serves.
func (s *Server) appliedVersion() uint64 {
	if snap := s.snap.Load(); snap != nil {
		return snap.Version()
	}
	return 0
}

// buildVersion is the VCS revision the binary was built from, for the heartbeat.
func buildVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	for _, st := range bi.Settings {
		if st.Key == "vcs.revision" {
			return st.Value
		}
	}
	return bi.Main.Version
}

func (s *Server) applySnapshot(st *state.State, version uint64) error {
	snap, err := authz.Build(st, version)
	if err != nil {
		return fmt.Errorf("building snapshot: %w", err)
	}
	old := s.snap.Swap(snap)
	s.metrics.SetStateVersion(version)
	// The billing profile records move the state version too (store
	// billing.go): read them now, so a new profile is used at once.
	s.reloadProfiles(context.Background())
	if s.limiter != nil && old != nil {
		// The next request of a changed entitlement is decided by its new
		// limits and shares, not by a lease taken under the old ones.
		if changed := changedEntitlements(old.State(), st); len(changed) > 0 {
			s.limiter.DropLeases(changed...)
		}
	}
	return nil
}

// changedEntitlements names the entitlements that differ between two
// states (limits, shares, scope, state), or exist in only one. An
// organization change (an account moved to another OU changes which share
// applies) counts for every entitlement.
func changedEntitlements(old, cur *state.State) []string {
	byName := make(map[string]*state.Entitlement, len(old.Entitlements))
	for i := range old.Entitlements {
		byName[old.Entitlements[i].Name] = &old.Entitlements[i]
	}
	orgChanged := !reflect.DeepEqual(old.Organization, cur.Organization)
	var out []string
	for i := range cur.Entitlements {
		e := &cur.Entitlements[i]
		if o, ok := byName[e.Name]; !ok || orgChanged || !reflect.DeepEqual(o, e) {
			out = append(out, e.Name)
		}
		delete(byName, e.Name)
	}
	for name := range byName {
		out = append(out, name)
	}
	return out
}

// bootstrap seeds a store that was never initialized with a state file (as
// `gateway apply -f` would). A store that was (it has a marker, even one
// flagged wiped, or holds any state) is left alone: every restart, scale-out
// and rolling upgrade runs with the same file, and applying it again would
// undo what was changed since, revocations first. One warning says so.
func (s *Server) bootstrap(ctx context.Context, path string, lookupEnv func(string) (string, bool)) error {
	st, err := state.LoadFile(path)
	if err != nil {
		return fmt.Errorf("reading bootstrap state: %w", err)
	}
	if err := st.ResolveSecrets(lookupEnv); err != nil {
		return fmt.Errorf("bootstrap state %s: %w", path, err)
	}
	st.Normalize()
	if err := st.Validate(); err != nil {
		return fmt.Errorf("bootstrap state %s is invalid:\n%w", path, err)
	}
	s.bootstrapState = st
	now := time.Now()
	seeded, version, err := s.store.Seed(ctx, "bootstrap", func(cur *state.State) error {
		merged, _, err := admin.Plan(cur, st, false, now)
		if err != nil {
			return err
		}
		*cur = *merged
		return nil
	})
	if err != nil {
		return fmt.Errorf("applying bootstrap state: %w", err)
	}
	if seeded {
		s.log.Info("bootstrap state seeded the empty store", "file", path, "version", version)
		return nil
	}
	s.warnNotSeeded(ctx, path, st, now)
	return nil
}

// warnNotSeeded logs the one warning of a bootstrap that applied nothing,
// with how many items the store and the file differ in, and why `gateway
// apply` of the file would be refused (such as a key revoked since).
func (s *Server) warnNotSeeded(ctx context.Context, path string, file *state.State, now time.Time) {
	const msg = "--bootstrap applied nothing: the store already holds state; change a live store with `gateway apply -f FILE`"
	attrs := []any{"file", path}
	if m, err := s.store.Marker(ctx); err != nil {
		attrs = append(attrs, "marker_error", err)
	} else if m != nil {
		attrs = append(attrs, "store_id", m.ID, "initialized_at", m.InitializedAt, "wiped", m.Wiped)
	}
	cur, _, err := s.store.Load(ctx)
	if err != nil {
		s.log.Warn(msg, append(attrs, "load_error", err)...)
		return
	}
	// The file as it stands against the store, its tombstones aside: they
	// are never removed, so they are no difference.
	view := file.Clone()
	view.Carry(&state.State{Revoked: cur.Revoked})
	attrs = append(attrs, "differences", len(state.Diff(cur, view)))
	if _, _, err := admin.Plan(cur, file, false, now); err != nil {
		attrs = append(attrs, "apply_refused", err.Error())
	}
	s.log.Warn(msg, attrs...)
}

func (s *Server) upstream(ctx context.Context, deps Deps) (endpoint, region string, creds aws.CredentialsProvider, err error) {
	cfg := s.cfg
	region = cfg.Region
	switch {
	case deps.UpstreamURL != "":
		if region == "" {
			region = "us-east-1"
		}
		s.awsCfg = aws.Config{Region: region, Credentials: deps.UpstreamCreds}
		return deps.UpstreamURL, region, deps.UpstreamCreds, nil
	case cfg.Simulate:
		if region == "" {
			region = "us-east-1"
		}
		akid, secret, err := authn.NewAccessKey()
		if err != nil {
			return "", "", nil, err
		}
		hub := &authn.Credential{ID: akid, Account: "111111111111", Label: "hub", Kind: "sigv4", Secret: secret}
		lookup, err := authn.NewStaticLookup(hub)
		if err != nil {
			return "", "", nil, err
		}
		verifier := authn.NewVerifier(authn.Options{})
		simOpts := sim.Options{
			Logger:       s.log,
			Verify:       func(r *http.Request, body []byte) error { return authn.VerifyStatic(verifier, r, body, lookup) },
			VerifyStream: authn.StreamVerifier(verifier, lookup),
			// The Organizations API serves the bootstrap file's
			// organization, so --org-sync-interval and `gateway org sync`
			// can be tried locally (make run).
			Organization:        s.simOrganization(),
			VerifyOrganizations: sim.NewSigV4Check(sim.SigV4Check{Service: "organizations", Region: region, Secrets: map[string]string{akid: secret}}),
			// CloudWatch too, so --cloudwatch-namespace and `gateway usage
			// reconcile` can be tried against it.
			VerifyCloudWatch: sim.NewSigV4Check(sim.SigV4Check{Service: "monitoring", PathPrefix: sim.CloudWatchPathPrefix,
				Secrets: map[string]string{akid: secret}}),
		}
		simulator := sim.New(simOpts)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", "", nil, fmt.Errorf("starting simulator: %w", err)
		}
		srv := &http.Server{Handler: simulator, ReadHeaderTimeout: 10 * time.Second, Protocols: h1AndH2C()}
		go func() { _ = srv.Serve(ln) }()
		s.closers = append(s.closers, func() { _ = srv.Close() })
		s.simURL = "http://" + ln.Addr().String()
		s.simHub = [2]string{akid, secret}
		s.log.Warn("--simulate: the upstream is the built-in Bedrock simulator, not AWS", "simulator", s.simURL)
		hubCreds := credentials.NewStaticCredentialsProvider(akid, secret, "")
		s.awsCfg = aws.Config{Region: region, Credentials: hubCreds}
		return s.simURL, region, hubCreds, nil
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return "", "", nil, fmt.Errorf("loading AWS configuration: %w", err)
	}
	if region == "" {
		region = awsCfg.Region
	}
	if region == "" {
		region = "us-east-1"
	}
	endpoint = cfg.UpstreamEndpoint
	if endpoint == "" {
		endpoint = "https://bedrock-runtime." + region + ".amazonaws.com"
	}
	// Say now, not at the first call, when the hub has no credentials.
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := awsCfg.Credentials.Retrieve(cctx); err != nil {
		s.log.Warn("hub AWS credentials are not available yet; calls will fail with ServiceUnavailableException until they are", "error", err)
	}
	awsCfg.Region = region
	s.awsCfg = awsCfg // keeps AWS_ENDPOINT_URL_BEDROCK and the like for the control plane
	return endpoint, region, awsCfg.Credentials, nil
}

// h1AndH2C accepts HTTP/1.1 and HTTP/2 with prior knowledge on cleartext.
func h1AndH2C() *http.Protocols {
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	return &p
}

func (s *Server) listen() error {
	cfg := s.cfg
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	protocols.SetHTTP2(true)
	errLog := slog.NewLogLogger(s.log.Handler(), slog.LevelWarn)
	s.data = &http.Server{
		Handler: s.proxy, Protocols: &protocols, ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout: 120 * time.Second, ErrorLog: errLog,
		// No ReadTimeout: it would cut the bidirectional stream's body; the
		// proxy puts a deadline on each request body it reads instead.
		HTTP2: listenerHTTP2(),
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", cfg.Listen, err)
	}
	if cfg.TLSCert != "" {
		reloader, err := newCertReloader(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			ln.Close()
			return err
		}
		s.data.TLSConfig = &tls.Config{GetCertificate: reloader.GetCertificate, MinVersion: tls.VersionTLS12, NextProtos: []string{"h2", "http/1.1"}}
		ln = tls.NewListener(ln, s.data.TLSConfig)
		s.tls = true
	}
	s.dataLn = ln

	mux := http.NewServeMux()
	var metricsHandler http.Handler = promhttp.HandlerFor(s.metrics.Registry, promhttp.HandlerOpts{})
	if cfg.MetricsToken != "" {
		metricsHandler = opsauth.Require(opsauth.NewSet([]opsauth.Token{opsauth.NewToken("metrics", opsauth.RoleViewer, cfg.MetricsToken)}),
			opsauth.RoleViewer, "gateway-metrics", metricsHandler)
	}
	mux.Handle("GET /metrics", metricsHandler)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /readyz", s.readyz)
	tokens, err := opsauth.NewFileSource(opsauth.FileSourceOptions{Static: cfg.AdminEnvTokens(), File: cfg.AdminTokenFile, Logger: s.log})
	if err != nil {
		return err
	}
	if tokens.Current().Len() == 0 {
		s.log.Warn("no admin token (GATEWAY_ADMIN_TOKEN or --admin-token-file): the admin API is disabled")
	}
	// Console sessions live in Redis beside the state, so any replica serves
	// any signed-in user.
	sessions := console.NewSessions(console.SessionOptions{
		Client: s.rdb, Tokens: tokens, Idle: cfg.ConsoleSessionIdle, Max: cfg.ConsoleSessionMax,
		SecureCookie: cfg.BehindTLSProxy, Timeout: s.redisTimeout(), Logger: s.log,
	})
	mux.Handle(console.SessionPath, sessions)
	mux.Handle("/admin/", admin.New(admin.Options{Store: s.store, Syncer: s.syncer, TokenSource: tokens, Sessions: sessions, Logger: s.log,
		PlainHTTPData: !s.tls && !cfg.BehindTLSProxy,
		Usage:         s.reports, Quota: s.reports, Billing: s.store, DailyUsage: s.reports, Replicas: s.store}))
	s.mountConsole(mux)
	if cfg.Pprof {
		// Profiles show memory and, through cmdline, the command line: admins
		// only, and cmdline never (a secret once given as a flag would show).
		debug := http.NewServeMux()
		debug.HandleFunc("/debug/pprof/", pprof.Index)
		debug.Handle("/debug/pprof/cmdline", http.NotFoundHandler())
		debug.HandleFunc("/debug/pprof/profile", pprof.Profile)
		debug.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		debug.HandleFunc("/debug/pprof/trace", pprof.Trace)
		mux.Handle("/debug/pprof/", opsauth.Require(tokens, opsauth.RoleAdmin, "gateway-admin", debug))
	}
	s.ops = &http.Server{Handler: withBodyDeadline(mux, cfg.BodyReadTimeout), ReadHeaderTimeout: 10 * time.Second, ErrorLog: errLog,
		IdleTimeout: 120 * time.Second, HTTP2: listenerHTTP2()}
	s.opsLn, err = net.Listen("tcp", cfg.OpsListen)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", cfg.OpsListen, err)
	}
	return nil
}

// maxConcurrentStreams bounds the HTTP/2 streams one client connection may
// have open at once (Go's default is larger); each may hold a request body.
const maxConcurrentStreams = 128

func listenerHTTP2() *http.HTTP2Config {
	return &http.HTTP2Config{
		MaxConcurrentStreams: maxConcurrentStreams,
		// A connection whose peer went silent is probed, then closed.
		SendPingTimeout: 60 * time.Second,
		PingTimeout:     15 * time.Second,
	}
}

// withBodyDeadline gives each request d to deliver its body. It is not the
// server's ReadTimeout, which in net/http also cancels a handler still
// running when it passes (a long CPU profile, a large apply).
func withBodyDeadline(next http.Handler, d time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil && r.Body != http.NoBody {
			rc := http.NewResponseController(w)
			if rc.SetReadDeadline(time.Now().Add(d)) == nil {
				r.Body = &deadlineBody{ReadCloser: r.Body, rc: rc}
			}
		}
		next.ServeHTTP(w, r)
	})
}

// deadlineBody lifts the read deadline once the body is in.
type deadlineBody struct {
	io.ReadCloser
	rc   *http.ResponseController
	done bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF && !b.done {
		b.done = true
		_ = b.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}

// Ready reports what /readyz reports as ready (or degraded): the state
// snapshot is loaded and the replica is not draining.
func (s *Server) Ready() bool { return !s.draining.Load() && s.snap.Load() != nil }

func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	switch {
	case s.draining.Load():
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, "draining\n")
	case s.snap.Load() == nil:
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, "not ready: state snapshot not loaded\n")
	case s.wiped.Load():
		// Still serving the last good snapshot; fail_closed calls are refused.
		_, _ = io.WriteString(w, "degraded: the state store lost its data; serving the last good snapshot until it is restored with gateway apply\n")
	case !s.limiter.Healthy():
		// Still serving: fail_open entitlements run on local limits and
		// fail_closed ones answer 503 themselves.
		_, _ = io.WriteString(w, "degraded: quota store unreachable\n")
	default:
		_, _ = io.WriteString(w, "ready\n")
	}
	if id := s.GatewayID(); s.cfg.IAMIdentity && id != "" {
		_, _ = io.WriteString(w, "gateway id: "+id+"\n")
	}
}

// GatewayID returns the audience of IAM identity tokens: --gateway-id, else
// derived from the loaded organization's id (empty before a state loads).
func (s *Server) GatewayID() string {
	if s.cfg.GatewayID != "" {
		return s.cfg.GatewayID
	}
	if snap := s.snap.Load(); snap != nil {
		return authn.DefaultGatewayID(snap.State().Organization.ID)
	}
	return ""
}

// simOrganization is the organization the built-in simulator's
// Organizations API serves: the --bootstrap file's, or none.
func (s *Server) simOrganization() *sim.Organization {
	if s.cfg.Bootstrap == "" {
		return nil
	}
	st, err := state.LoadFile(s.cfg.Bootstrap)
	if err != nil {
		return nil // bootstrap itself reports it
	}
	org := sim.OrganizationFromState(st.Organization)
	if err := org.Check(); err != nil {
		s.log.Warn("--simulate: the simulator does not serve the bootstrap file's organization", "error", err)
		return nil
	}
	return org
}

// iamVerifier builds the IAM identity verifier. With --simulate and no
// --sts-endpoint, the simulator (which serves STS too) is the STS endpoint,
// so that `make run` users can try IAM identity locally.
func (s *Server) iamVerifier() *authn.IAMVerifier {
	endpoint := s.cfg.STSEndpoint
	if endpoint == "" && s.cfg.Simulate {
		endpoint = s.simURL
	}
	if s.cfg.TLSCert == "" && !s.cfg.BehindTLSProxy {
		s.log.Warn("--iam-identity without TLS (--tls-cert) or --behind-tls-proxy: IAM identity tokens are bearer tokens, refused over plain HTTP")
	}
	perSource := s.cfg.IAMVerifyRatePerSource
	if perSource == 0 {
		perSource = -1 // off
	}
	return authn.NewIAMVerifier(authn.IAMVerifierOptions{
		STSEndpoint:         endpoint,
		CacheTTL:            s.cfg.IAMIdentityCacheTTL,
		VerifyRate:          s.cfg.IAMVerifyRate,
		VerifyRatePerSource: perSource,
		Logger:              s.log,
	})
}

// Run serves until ctx ends, then drains: it stops accepting, lets in-flight
// requests and streams finish (bounded by --shutdown-timeout), settles their
// reservations and exits.
func (s *Server) Run(ctx context.Context) error {
	defer s.close()
	syncCtx, stopSync := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); s.syncer.Run(syncCtx) }()
	degradedCtx, stopDegraded := context.WithCancel(context.Background())
	wg.Add(1)
	go func() { defer wg.Done(); s.watchDegraded(degradedCtx) }()
	wg.Add(1)
	go func() { defer wg.Done(); s.watchQuotaRemaining(degradedCtx) }()
	wg.Add(1)
	go func() { defer wg.Done(); s.watchPersistence(degradedCtx) }()
	if s.orgSync != nil {
		wg.Add(1)
		go func() { defer wg.Done(); s.orgSync.Run(degradedCtx) }()
	}
	if s.billingSync != nil {
		wg.Add(1)
		go func() { defer wg.Done(); s.billingSync.Run(degradedCtx) }()
	}
	wg.Add(1)
	go func() { defer wg.Done(); s.watchProfiles(degradedCtx) }()
	if s.publisher != nil {
		wg.Add(1)
		go func() { defer wg.Done(); s.publisher.Run(degradedCtx) }()
	}
	wg.Add(1)
	go func() { defer wg.Done(); s.beat.Run(degradedCtx) }()

	errc := make(chan error, 2)
	go func() { errc <- serve(s.data, s.dataLn) }()
	go func() { errc <- serve(s.ops, s.opsLn) }()
	s.log.Info("gateway serving", "data", s.DataAddr(), "tls", s.tls, "ops", s.OpsAddr())
	if s.cfg.IAMIdentity {
		s.log.Info("IAM identity tokens accepted", "gateway_id", s.GatewayID())
	}

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
	}
	s.draining.Store(true)
	s.log.Info("draining", "inflight", s.proxy.Inflight())
	shutdownCtx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	if err := s.data.Shutdown(shutdownCtx); err != nil {
		s.cutInflight()
	}
	closeCtx, cancelClose := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancelClose()
	if err := s.limiter.Close(closeCtx); err != nil {
		s.log.Error("draining quota settlements", "error", err)
	}
	if err := s.notifier.Close(closeCtx); err != nil {
		s.log.Error("delivering budget alerts", "error", err)
	}
	if s.publisher != nil {
		// Last: the drained calls are in its statistics by now.
		if err := s.publisher.Close(closeCtx); err != nil {
			s.log.Error("publishing the last CloudWatch metrics", "error", err)
		}
	}
	_ = s.ops.Shutdown(shutdownCtx)
	stopSync()
	stopDegraded()
	wg.Wait()
	s.log.Info("stopped")
	return runErr
}

func (s *Server) watchDegraded(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		s.metrics.SetStoreDegraded(!s.limiter.Healthy())
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func serve(srv *http.Server, ln net.Listener) error {
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func (s *Server) close() {
	for i := len(s.closers) - 1; i >= 0; i-- {
		s.closers[i]()
	}
	s.closers = nil
}

// ExampleCall returns a credential with a known secret from the bootstrap file
// and an entitlement shared with its account, for the ready message of
// `make run`. Only in --simulate mode: a real deployment never prints secrets.
func (s *Server) ExampleCall() (state.Credential, string, bool) {
	if !s.cfg.Simulate || s.bootstrapState == nil {
		return state.Credential{}, "", false
	}
	snap := s.snap.Load()
	for _, c := range s.bootstrapState.Credentials {
		if c.Kind != state.KindSigV4 || c.Secret == "" {
			continue
		}
		if snap == nil {
			return c, "", false
		}
		if ents := snap.EntitlementsFor(c.Account); len(ents) > 0 {
			return c, ents[0].Name, true
		}
	}
	return state.Credential{}, "", false
}

// Inflight reports requests being served now (including streams still drained
// after their client left).
func (s *Server) Inflight() int64 { return s.proxy.Inflight() }

// quotaGaugeInterval is how often gateway_quota_remaining_tokens is refreshed.
const quotaGaugeInterval = 15 * time.Second

// watchQuotaRemaining keeps gateway_quota_remaining_tokens current for every
// cap of every entitlement (and every account cap with usage this month),
// read from Redis, so dashboards and alerts see each cap, not only the
// tightest one a request happened to report.
func (s *Server) watchQuotaRemaining(ctx context.Context) {
	t := time.NewTicker(quotaGaugeInterval)
	defer t.Stop()
	for {
		if snap := s.snap.Load(); snap != nil && s.limiter.Healthy() {
			for _, e := range snap.Entitlements() {
				if ctx.Err() != nil {
					return
				}
				if !e.HasCaps() {
					continue
				}
				rep, err := s.reports.Quota(ctx, e.Name)
				if err != nil {
					continue
				}
				for _, c := range rep.Caps {
					s.metrics.QuotaRemaining(e.Name, c.Level, c.Target, c.Remaining)
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// checkTimeZone refuses to start with a --time-zone other than the one the
// store's replicas count months in (recorded by the first), unless
// --time-zone-change says to replace it. A store that cannot be read now is
// not a reason to refuse: the replica starts, as it does without its state.
func (s *Server) checkTimeZone(ctx context.Context, loc *time.Location) error {
	zone := loc.String() // "" and "UTC" are one zone
	prev, err := s.store.CheckTimeZone(ctx, zone, s.cfg.TimeZoneChange)
	var mismatch *store.TimeZoneMismatchError
	switch {
	case errors.As(err, &mismatch):
		return err
	case err != nil:
		s.log.Warn("could not check --time-zone against the state store", "time_zone", zone, "error", err)
	case s.cfg.TimeZoneChange && prev != "" && prev != zone:
		s.log.Warn("--time-zone-change: the store's time zone is changed; restart every other replica with the same --time-zone",
			"from", prev, "to", zone)
	}
	return nil
}
