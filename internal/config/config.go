// Package config owns the settings of `gateway serve`: their names, defaults and
// help, and how they are read from a YAML file, GATEWAY_* environment variables
// and flags (flags win over the environment, which wins over the file). The same
// table generates the configuration reference, so docs cannot drift from code.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/bedrock-gateway/gateway/internal/opsauth"
)

// Serve holds every setting of `gateway serve`.
type Serve struct {
	Listen              string
	OpsListen           string
	TLSCert             string
	TLSKey              string
	BehindTLSProxy      bool
	RedisURL            string
	RedisMode           string
	RedisMasterName     string
	RedisTimeout        time.Duration
	Region              string
	UpstreamEndpoint    string
	Simulate            bool
	Bootstrap           string
	AdminTokens         []string
	MaxBodyBytes        int64
	BodyReadTimeout     time.Duration
	MaxInflightBody     int64
	LogFormat           string
	LogLevel            string
	TimeZone            string
	TimeZoneChange      bool
	DefaultMaxOutput    int64
	ConnectTimeout      time.Duration
	HeaderTimeout       time.Duration
	IdleTimeout         time.Duration
	DrainTimeout        time.Duration
	ShutdownTimeout     time.Duration
	ReservationTTL      time.Duration
	SpillFile           string
	FailOpenRate        float64
	QuotaLeases         bool
	MetricsDropAccount  bool
	Pprof               bool
	PricesFile          string
	AlertWebhookURL     string
	AlertWebhookSecret  string
	UsageStreamMaxLen   int64
	TrustedProxyHeaders bool
	ModelMaxOutputFile  string
	IAMIdentity         bool
	GatewayID           string
	STSEndpoint         string
	IAMIdentityCacheTTL time.Duration
	// IAMVerifyRate and IAMVerifyRatePerSource bound STS verifications of
	// tokens not cached, per second, overall and per source address.
	IAMVerifyRate          float64
	IAMVerifyRatePerSource float64
	// Console sessions (sign-in with an admin token).
	ConsoleSessionIdle time.Duration
	ConsoleSessionMax  time.Duration
	// Periodic org sync (gateway org sync --apply on one replica at a time).
	OrgSyncInterval       time.Duration
	OrganizationsEndpoint string
	OrgSyncTeamTag        string
	TLSSelfSigned         bool
	// Billing profiles (gateway billing sync --apply on one replica at a
	// time) and the Bedrock control-plane endpoint they are made through.
	BedrockEndpoint       string
	BillingSyncInterval   time.Duration
	BillingEntitlementTag string
	BillingTeamTag        string
	// CloudWatch publishing (internal/cloudwatch); an empty namespace is off.
	CloudWatchNamespace        string
	CloudWatchInterval         time.Duration
	CloudWatchEndpoint         string
	CloudWatchAccountDimension bool
	// Console serves the web console at /console/ on the ops listener
	// (only with an admin token: signing in takes one).
	Console bool

	// Secrets never come from flags: from the environment, the config file,
	// or these files, read by Load.
	RedisURLFile           string
	AdminTokenFile         string
	AlertWebhookSecretFile string
	MetricsToken           string
	MetricsTokenFile       string
	adminFileTokens        []opsauth.Token // parsed from AdminTokenFile by Load
}

// Setting describes one configurable value.
type Setting struct {
	Name    string // flag name; the env var is GATEWAY_<NAME> with '-' as '_'; the YAML key uses '_'
	Default string
	Help    string
	Secret  bool // never printed with its value
	ptr     any
}

// Env returns the environment variable name of the setting.
func (s Setting) Env() string {
	return "GATEWAY_" + strings.ToUpper(strings.ReplaceAll(s.Name, "-", "_"))
}

// Key returns the YAML config-file key of the setting.
func (s Setting) Key() string { return strings.ReplaceAll(s.Name, "-", "_") }

// Settings returns the table of settings bound to c.
func (c *Serve) Settings() []Setting {
	return []Setting{
		{"listen", ":8080", "data-plane listen address (Bedrock Runtime API; HTTP/1.1, h2c, and h2 with TLS)", false, &c.Listen},
		{"ops-listen", ":9090", "ops listen address: /metrics, /healthz, /readyz, /admin/v1, /debug/pprof", false, &c.OpsListen},
		{"tls-cert", "", "PEM certificate for the data listener (enables TLS and h2; reloaded when the file changes)", false, &c.TLSCert},
		{"tls-key", "", "PEM private key for --tls-cert", false, &c.TLSKey},
		{"behind-tls-proxy", "false", "a trusted load balancer terminates TLS in front of the data listener: accept bearer API keys over its plain-HTTP connections (otherwise refused without TLS)", false, &c.BehindTLSProxy},
		{"redis-url", "", "Redis URL (redis:// or rediss://, user and password in the URL); comma-separated seeds with --redis-mode cluster or sentinel; empty = embedded in-process Redis for trying it out only", true, &c.RedisURL},
		{"redis-url-file", "", "file holding --redis-url (one line), read at start", false, &c.RedisURLFile},
		{"redis-mode", "single", "single, sentinel or cluster", false, &c.RedisMode},
		{"redis-master-name", "", "Sentinel master name (with --redis-mode sentinel)", false, &c.RedisMasterName},
		{"redis-timeout", "500ms", "timeout of every Redis call (at least 5s with the embedded Redis)", false, &c.RedisTimeout},
		{"region", "", "upstream AWS region (default from the AWS config chain, else us-east-1)", false, &c.Region},
		{"upstream-endpoint", "", "upstream Bedrock Runtime URL (default https://bedrock-runtime.<region>.amazonaws.com)", false, &c.UpstreamEndpoint},
		{"simulate", "false", "run the built-in Bedrock simulator in-process and use it as the upstream (for trying the gateway out)", false, &c.Simulate},
		{"bootstrap", "", "state file that seeds an empty store at start (organization, entitlements, shares, credentials); a store that holds state is left alone, with a warning", false, &c.Bootstrap},
		{"admin-token", "", "admin API bearer token (role admin), as NAME=TOKEN or TOKEN; separate several with commas; no token here or in --admin-token-file = no admin API", true, &c.AdminTokens},
		{"admin-token-file", "", "file of admin API tokens, one a line: NAME ROLE sha256:HEX (ROLE admin, operator or viewer; HEX the token's SHA-256; # comments), read again when it changes", false, &c.AdminTokenFile},
		{"max-body-bytes", "25000000", "largest request body accepted (larger gets ValidationException)", false, &c.MaxBodyBytes},
		{"body-read-timeout", "30s", "longest time to receive a request body once its credential passed the header checks (then RequestTimeoutException, 408); the bidirectional stream is exempt", false, &c.BodyReadTimeout},
		{"max-inflight-body-bytes", "536870912", "request-body bytes buffered at once by requests not yet answered (beyond: ServiceUnavailableException, 503, and the connection closed)", false, &c.MaxInflightBody},
		{"log-format", "json", "json or text", false, &c.LogFormat},
		{"log-level", "info", "debug, info, warn or error", false, &c.LogLevel},
		{"time-zone", "UTC", "IANA time zone of monthly quota windows and of the usage report's default month; every replica of one store must use the same (recorded in the store: a replica with another refuses to start)", false, &c.TimeZone},
		{"time-zone-change", "false", "at start, replace the --time-zone recorded in the store by this replica's (to change the zone of every replica: see docs/operations.md)", false, &c.TimeZoneChange},
		{"default-max-output-tokens", "4096", "output tokens reserved when a request does not name a maximum", false, &c.DefaultMaxOutput},
		{"upstream-connect-timeout", "5s", "upstream TCP+TLS connect timeout", false, &c.ConnectTimeout},
		{"upstream-header-timeout", "300s", "longest wait for upstream response headers (then ModelTimeoutException)", false, &c.HeaderTimeout},
		{"upstream-idle-timeout", "90s", "idle upstream keep-alive connections are closed after this", false, &c.IdleTimeout},
		{"drain-timeout", "60s", "after a client disconnects mid-stream, how long the gateway keeps reading upstream to learn the exact usage", false, &c.DrainTimeout},
		{"shutdown-timeout", "120s", "on SIGTERM, how long in-flight requests and streams may take to finish", false, &c.ShutdownTimeout},
		{"reservation-ttl", "15m", "how long a quota reservation holds tokens after its replica stops refreshing it (a crash); in-flight calls keep theirs, extended every TTL/3", false, &c.ReservationTTL},
		{"spill-file", "", "file where queued usage is written on shutdown while Redis is unreachable (reloaded at start)", false, &c.SpillFile},
		{"quota-leases", "true", "admit requests against blocks of tokens each replica reserves ahead (one Redis round trip per lease, not per request; caps stay exact, see Quotas in the README); false reserves per request", false, &c.QuotaLeases},
		{"fail-open-rate", "50", "requests per second one replica admits for fail_open entitlements while Redis is unreachable", false, &c.FailOpenRate},
		{"metrics-drop-account-label", "false", "leave the account label empty in metrics (for very large organizations)", false, &c.MetricsDropAccount},
		{"metrics-token", "", "when set, /metrics requires Authorization: Bearer <this token> (at least 16 characters)", true, &c.MetricsToken},
		{"metrics-token-file", "", "file holding --metrics-token (one line), read at start", false, &c.MetricsTokenFile},
		{"pprof", "false", "serve /debug/pprof on the ops listener, to admin-role tokens only (cmdline is never served)", false, &c.Pprof},
		{"console-session-idle", "30m", "a console session unused for this long ends (each use starts it again)", false, &c.ConsoleSessionIdle},
		{"console-session-max", "12h", "a console session ends this long after sign-in, however much it is used", false, &c.ConsoleSessionMax},
		{"prices-file", "", "YAML price table per upstream model (USD per million input, output, cache_read, cache_write tokens)", false, &c.PricesFile},
		{"alert-webhook-url", "", "URL that budget alerts are POSTed to", false, &c.AlertWebhookURL},
		{"alert-webhook-secret", "", "HMAC-SHA256 key signing budget alert webhooks (X-Gateway-Signature)", true, &c.AlertWebhookSecret},
		{"alert-webhook-secret-file", "", "file holding --alert-webhook-secret (one line), read at start", false, &c.AlertWebhookSecretFile},
		{"usage-stream-max-len", "0", "when > 0, also append one event per request to a Redis Stream of about this length", false, &c.UsageStreamMaxLen},
		{"trusted-proxy-headers", "false", "trust X-Forwarded-For for the client address in logs", false, &c.TrustedProxyHeaders},
		{"model-max-output-file", "", "YAML mapping of model ID to its maximum output tokens, adding to or replacing the built-in table that strict estimates reserve for requests naming no maximum", false, &c.ModelMaxOutputFile},
		{"iam-identity", "false", "accept IAM identity tokens (bearer bgw-iam-v1.…: a presigned STS GetCallerIdentity, verified against STS) from callers with their own AWS identity; needs TLS or --behind-tls-proxy", false, &c.IAMIdentity},
		{"gateway-id", "", "this gateway's id, the audience IAM identity tokens are minted for (default bgw-<organization id>)", false, &c.GatewayID},
		{"sts-endpoint", "", "STS origin (scheme://host[:port], no path) accepted in IAM identity tokens besides the AWS STS hosts: a VPC endpoint or a simulator; http only here", false, &c.STSEndpoint},
		{"iam-identity-cache-ttl", "5m", "how long a verified IAM identity is reused (never beyond its token's expiry)", false, &c.IAMIdentityCacheTTL},
		{"iam-verify-rate", "200", "STS verifications per second of IAM identity tokens not cached, over all callers (bursts of twice that); beyond it ThrottlingException, so fresh tokens minted by anyone cannot flood STS", false, &c.IAMVerifyRate},
		{"iam-verify-rate-per-source", "20", "the same per source address (the TCP peer: behind a load balancer, the balancer), with at most 8 verifications in flight per address; 0 turns the per-address bound off", false, &c.IAMVerifyRatePerSource},
		{"org-sync-interval", "0s", "when > 0, sync the organization from AWS Organizations this often (as gateway org sync --apply, never pruning), on one replica at a time", false, &c.OrgSyncInterval},
		{"organizations-endpoint", "", "Organizations API URL for the periodic org sync instead of AWS's (a simulator, a proxy)", false, &c.OrganizationsEndpoint},
		{"org-sync-team-tag", "team", "account tag holding the team for the periodic org sync; untagged accounts keep their team", false, &c.OrgSyncTeamTag},
		{"cloudwatch-namespace", "", "CloudWatch namespace to publish per-entitlement and per-team metrics to, usually BedrockGateway (empty: no publishing)", false, &c.CloudWatchNamespace},
		{"cloudwatch-interval", "1m", "how often each replica publishes its CloudWatch statistic sets (and once more on shutdown)", false, &c.CloudWatchInterval},
		{"cloudwatch-endpoint", "", "CloudWatch API URL instead of AWS's (a VPC endpoint, the simulator); AWS_ENDPOINT_URL_CLOUDWATCH and AWS_ENDPOINT_URL are honoured too", false, &c.CloudWatchEndpoint},
		{"cloudwatch-account-dimension", "false", "also publish CloudWatch metrics per Account and per Entitlement and Account (one metric per account: cost and cardinality)", false, &c.CloudWatchAccountDimension},
		{"tls-self-signed", "false", "with --simulate only: serve TLS with a CA and a certificate for 127.0.0.1 and localhost generated at start into a temporary directory (the CA file's path is printed), so that bearer tokens work locally (make run)", false, &c.TLSSelfSigned},
		{"bedrock-endpoint", "", "Bedrock control-plane URL (application inference profiles) instead of AWS's or AWS_ENDPOINT_URL_BEDROCK (a VPC endpoint, a simulator; with --simulate the built-in one)", false, &c.BedrockEndpoint},
		{"billing-sync-interval", "0s", "when > 0, sync the application inference profiles of entitlements with billing.profiles this often (as gateway billing sync --apply, never pruning), on one replica at a time", false, &c.BillingSyncInterval},
		{"billing-entitlement-tag", "bedrock-gateway:entitlement", "tag key carrying the entitlement on the periodic billing sync's profiles", false, &c.BillingEntitlementTag},
		{"billing-team-tag", "bedrock-gateway:team", "tag key carrying the team on the periodic billing sync's profiles", false, &c.BillingTeamTag},
		{"console", "true", "serve the web console at /console/ on the ops listener; it is on only when an admin token is configured (signing in takes one)", false, &c.Console},
	}
}

// Load reads settings: defaults, then the YAML file named by --config (or
// GATEWAY_CONFIG), then GATEWAY_* variables, then flags. Every problem is reported
// at once. It returns flag.ErrHelp when -h was given (usage already printed to out).
func Load(args []string, getenv func(string) string, out io.Writer) (*Serve, error) {
	c := &Serve{}
	settings := c.Settings()
	for _, s := range settings {
		if err := set(s.ptr, s.Default, true); err != nil {
			panic(fmt.Sprintf("config: bad default for %s: %v", s.Name, err)) // a programming error
		}
	}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(out)
	configPath := fs.String("config", getenv("GATEWAY_CONFIG"), "YAML config file (keys are the flag names with '_' for '-')")
	flagVals := map[string]*flagValue{}
	for _, s := range settings {
		fv := &flagValue{}
		flagVals[s.Name] = fv
		help := s.Help + secretNote(s) + " (env " + s.Env() + ")"
		if s.Default != "" && s.Default != "false" {
			help += " (default " + s.Default + ")"
		}
		if _, isBool := s.ptr.(*bool); isBool {
			fs.Var(&boolFlag{fv}, s.Name, help)
		} else {
			fs.Var(fv, s.Name, help)
		}
	}
	fs.Usage = func() {
		fmt.Fprintf(out, "Usage: gateway serve [flags]\n\nRuns the gateway. Every flag can also come from the environment (GATEWAY_<NAME>) or a YAML file (--config); flags win.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	var errs []error
	if *configPath != "" {
		if err := c.loadFile(*configPath, settings); err != nil {
			errs = append(errs, err)
		}
	}
	for _, s := range settings {
		if v := getenv(s.Env()); v != "" {
			if err := set(s.ptr, v, true); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", s.Env(), err))
			}
		}
	}
	for _, s := range settings {
		fv := flagVals[s.Name]
		if s.Secret && len(fv.values) > 0 && !flagAllowed(s, fv.values) {
			errs = append(errs, secretFlagError(s))
			continue
		}
		for i, v := range fv.values {
			if err := set(s.ptr, v, i == 0); err != nil {
				errs = append(errs, fmt.Errorf("--%s: %w", s.Name, err))
			}
		}
	}
	errs = append(errs, c.readSecretFiles(settings)...)
	if err := c.Validate(); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return c, errors.Join(errs...)
	}
	return c, nil
}

// secretNote is appended to a secret setting's help.
func secretNote(s Setting) string {
	if !s.Secret {
		return ""
	}
	if s.Name == "redis-url" {
		return "; secret when it holds a password: then not accepted as a flag, use " + s.Env() + ", the --config file or --" + s.Name + "-file"
	}
	return "; secret: not accepted as a flag, use " + s.Env() + ", the --config file or --" + s.Name + "-file"
}

// flagAllowed reports whether a secret setting may come from these flag
// values: only a Redis URL without a password may.
func flagAllowed(s Setting, values []string) bool {
	if s.Name != "redis-url" {
		return false
	}
	for _, v := range values {
		for _, raw := range strings.Split(v, ",") {
			u, err := url.Parse(strings.TrimSpace(raw))
			if err != nil {
				// Unparsable: Validate reports it, unless it may hide a password.
				if strings.Contains(raw, "@") {
					return false
				}
				continue
			}
			if _, hasPassword := u.User.Password(); hasPassword {
				return false
			}
		}
	}
	return true
}

// secretFlagError says where a secret given as a flag must come from instead.
// The value is never repeated.
func secretFlagError(s Setting) error {
	what := "a secret"
	if s.Name == "redis-url" {
		what = "a Redis URL with a password"
	}
	return fmt.Errorf("--%s: %s is not accepted as a flag (a command line is visible to every user of the machine, in ps and /proc); set %s, or use --%s-file FILE or the --config file",
		s.Name, what, s.Env(), s.Name)
}

// readSecretFiles reads every --<secret>-file: a single-line secret into its
// setting (trailing newline removed), the admin token file into
// adminFileTokens.
func (c *Serve) readSecretFiles(settings []Setting) []error {
	var errs []error
	byName := map[string]Setting{}
	for _, s := range settings {
		byName[s.Name] = s
	}
	for _, s := range settings {
		if !s.Secret {
			continue
		}
		file, ok := byName[s.Name+"-file"]
		if !ok {
			panic("config: secret setting " + s.Name + " has no " + s.Name + "-file setting") // a programming error
		}
		path := *file.ptr.(*string)
		if path == "" {
			continue
		}
		data, err := os.ReadFile(path)
		if err != nil {
			errs = append(errs, fmt.Errorf("--%s: %w", file.Name, err))
			continue
		}
		if s.Name == "admin-token" {
			// Tokens from the environment and from the file add up.
			toks, err := opsauth.ParseFile(data)
			if err != nil {
				errs = append(errs, fmt.Errorf("--%s %s:\n%w", file.Name, path, err))
				continue
			}
			c.adminFileTokens = toks
			continue
		}
		dst := s.ptr.(*string)
		if *dst != "" {
			errs = append(errs, fmt.Errorf("--%s and %s (or %s in the config file, or --%s) are both set; keep one", file.Name, s.Env(), s.Key(), s.Name))
			continue
		}
		v := strings.TrimRight(string(data), "\r\n")
		if v == "" {
			errs = append(errs, fmt.Errorf("--%s: %s is empty", file.Name, path))
			continue
		}
		*dst = v
	}
	return errs
}

// AdminAuthTokens returns every admin token: those of GATEWAY_ADMIN_TOKEN
// (or the config file), role admin and named "token<i>" when unnamed, then
// those of --admin-token-file as read at start.
func (c *Serve) AdminAuthTokens() []opsauth.Token {
	return append(c.AdminEnvTokens(), c.adminFileTokens...)
}

// AdminEnvTokens returns the admin tokens of GATEWAY_ADMIN_TOKEN (or the
// config file), role admin and named "token<i>" when unnamed: those that
// stay when --admin-token-file is read again.
func (c *Serve) AdminEnvTokens() []opsauth.Token {
	var tokens []opsauth.Token
	for i, t := range c.AdminTokens {
		name, value, named := SplitToken(t)
		if !named {
			name = fmt.Sprintf("token%d", i+1)
		}
		tokens = append(tokens, opsauth.NewToken(name, opsauth.RoleAdmin, value))
	}
	return tokens
}

func (c *Serve) loadFile(path string, settings []Setting) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("reading config file: %w", err)
	}
	var raw map[string]yaml.Node
	if err := yaml.Unmarshal(data, &raw); err != nil {
		return fmt.Errorf("parsing config file %s: %w", path, err)
	}
	byKey := map[string]Setting{}
	for _, s := range settings {
		byKey[s.Key()] = s
	}
	var errs []error
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		node := raw[k]
		s, ok := byKey[k]
		if !ok {
			errs = append(errs, fmt.Errorf("config file %s: unknown key %q", path, k))
			continue
		}
		var vals []string
		if node.Kind == yaml.SequenceNode {
			for _, n := range node.Content {
				vals = append(vals, n.Value)
			}
		} else {
			vals = []string{node.Value}
		}
		for i, v := range vals {
			if err := set(s.ptr, v, i == 0); err != nil {
				errs = append(errs, fmt.Errorf("config file %s: %s: %w", path, k, err))
			}
		}
	}
	return errors.Join(errs...)
}

// Validate checks values and their combinations, reporting every problem.
func (c *Serve) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if c.Listen == "" {
		bad("--listen must not be empty")
	}
	if c.OpsListen == "" {
		bad("--ops-listen must not be empty")
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		bad("--tls-cert and --tls-key go together")
	}
	switch c.RedisMode {
	case "single", "cluster":
	case "sentinel":
		if c.RedisMasterName == "" {
			bad("--redis-mode sentinel needs --redis-master-name")
		}
	default:
		bad("--redis-mode must be single, sentinel or cluster, not %q", c.RedisMode)
	}
	if c.RedisURL != "" {
		for _, u := range strings.Split(c.RedisURL, ",") {
			u = strings.TrimSpace(u)
			if !strings.HasPrefix(u, "redis://") && !strings.HasPrefix(u, "rediss://") {
				bad("--redis-url: each URL must start with redis:// or rediss://")
				break
			}
		}
	}
	if c.TLSSelfSigned && (!c.Simulate || c.TLSCert != "") {
		// A generated certificate is trusted by nothing but the demo: never in production.
		bad("--tls-self-signed needs --simulate and excludes --tls-cert")
	}
	if c.Simulate && c.UpstreamEndpoint != "" {
		bad("--simulate and --upstream-endpoint exclude each other")
	}
	if c.UpstreamEndpoint != "" && !strings.HasPrefix(c.UpstreamEndpoint, "http://") && !strings.HasPrefix(c.UpstreamEndpoint, "https://") {
		bad("--upstream-endpoint must be an http:// or https:// URL")
	}
	if c.MaxBodyBytes <= 0 {
		bad("--max-body-bytes must be positive")
	}
	if c.MaxInflightBody < c.MaxBodyBytes {
		bad("--max-inflight-body-bytes must be at least --max-body-bytes (else the largest body could never be received)")
	}
	switch c.LogFormat {
	case "json", "text":
	default:
		bad("--log-format must be json or text, not %q", c.LogFormat)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("--log-level must be debug, info, warn or error, not %q", c.LogLevel)
	}
	if _, err := time.LoadLocation(c.TimeZone); err != nil {
		bad("--time-zone: %v", err)
	}
	if c.DefaultMaxOutput <= 0 {
		bad("--default-max-output-tokens must be positive")
	}
	for name, d := range map[string]time.Duration{
		"redis-timeout": c.RedisTimeout, "upstream-connect-timeout": c.ConnectTimeout,
		"upstream-header-timeout": c.HeaderTimeout, "upstream-idle-timeout": c.IdleTimeout,
		"drain-timeout": c.DrainTimeout, "shutdown-timeout": c.ShutdownTimeout, "reservation-ttl": c.ReservationTTL,
		"body-read-timeout": c.BodyReadTimeout,
	} {
		if d <= 0 {
			bad("--%s must be positive", name)
		}
	}
	if c.ReservationTTL > 0 && c.ReservationTTL <= c.DrainTimeout {
		bad("--reservation-ttl must exceed --drain-timeout (a reservation must outlive the drain that settles it)")
	}
	if c.FailOpenRate <= 0 {
		bad("--fail-open-rate must be positive")
	}
	for _, t := range c.AdminTokens {
		_, tok, _ := SplitToken(t)
		if len(tok) < 16 {
			bad("GATEWAY_ADMIN_TOKEN: tokens must be at least 16 characters")
			break
		}
	}
	adminNames := map[string]bool{}
	for _, t := range c.AdminAuthTokens() {
		if adminNames[t.Name] {
			bad("admin token name %q is given twice (GATEWAY_ADMIN_TOKEN, --admin-token-file)", t.Name)
		}
		adminNames[t.Name] = true
	}
	if c.Pprof && len(adminNames) == 0 {
		bad("--pprof needs an admin token (GATEWAY_ADMIN_TOKEN or --admin-token-file): /debug/pprof is served to admins only")
	}
	if c.MetricsToken != "" && len(c.MetricsToken) < 16 {
		bad("the metrics token must be at least 16 characters")
	}
	if c.UsageStreamMaxLen < 0 {
		bad("--usage-stream-max-len must not be negative")
	}
	if c.ConsoleSessionIdle <= 0 || c.ConsoleSessionMax <= 0 {
		bad("--console-session-idle and --console-session-max must be positive")
	} else if c.ConsoleSessionIdle > c.ConsoleSessionMax {
		bad("--console-session-idle must not exceed --console-session-max")
	}
	if c.IAMIdentityCacheTTL <= 0 {
		bad("--iam-identity-cache-ttl must be positive")
	}
	if !(c.IAMVerifyRate > 0) || math.IsInf(c.IAMVerifyRate, 0) {
		bad("--iam-verify-rate must be a positive number")
	}
	if !(c.IAMVerifyRatePerSource >= 0) || math.IsInf(c.IAMVerifyRatePerSource, 0) {
		bad("--iam-verify-rate-per-source must be 0 (off) or a positive number")
	}
	if c.OrgSyncInterval < 0 {
		bad("--org-sync-interval must not be negative")
	}
	if c.OrganizationsEndpoint != "" {
		if u, err := url.Parse(c.OrganizationsEndpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
			bad("--organizations-endpoint must be an http:// or https:// URL without user information")
		}
	}
	if c.OrgSyncTeamTag == "" || len(c.OrgSyncTeamTag) > 128 {
		bad("--org-sync-team-tag must be 1 to 128 characters")
	}
	if c.BillingSyncInterval < 0 {
		bad("--billing-sync-interval must not be negative")
	}
	if c.BedrockEndpoint != "" {
		if u, err := url.Parse(c.BedrockEndpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
			bad("--bedrock-endpoint must be an http:// or https:// URL without user information")
		}
	}
	for _, t := range []struct{ flag, v string }{{"--billing-entitlement-tag", c.BillingEntitlementTag}, {"--billing-team-tag", c.BillingTeamTag}} {
		if t.v == "" || len(t.v) > 128 {
			bad("%s must be 1 to 128 characters", t.flag)
		}
	}
	if c.BillingEntitlementTag == c.BillingTeamTag {
		bad("--billing-entitlement-tag and --billing-team-tag must differ")
	}
	if c.CloudWatchNamespace != "" && (len(c.CloudWatchNamespace) > 255 || strings.HasPrefix(c.CloudWatchNamespace, "AWS/")) {
		bad("--cloudwatch-namespace must be 1 to 255 characters and must not start with AWS/")
	}
	if c.CloudWatchInterval < time.Second {
		bad("--cloudwatch-interval must be at least 1s")
	}
	if c.CloudWatchEndpoint != "" {
		if u, err := url.Parse(c.CloudWatchEndpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
			bad("--cloudwatch-endpoint must be an http:// or https:// URL without user information")
		}
	}
	if c.STSEndpoint != "" && !isOrigin(c.STSEndpoint) {
		bad("--sts-endpoint must be an origin: http:// or https://, a host, an optional port, no path, query or user")
	}
	sort.Slice(errs, func(i, j int) bool { return errs[i].Error() < errs[j].Error() })
	return errors.Join(errs...)
}

// SplitToken splits "NAME=TOKEN" (or a bare TOKEN, named "token<i>" by the caller).
func SplitToken(s string) (name, token string, named bool) {
	if i := strings.IndexByte(s, '='); i > 0 {
		return s[:i], s[i+1:], true
	}
	return "", s, false
}

type flagValue struct{ values []string }

func (f *flagValue) String() string     { return "" }
func (f *flagValue) Set(v string) error { f.values = append(f.values, v); return nil }

type boolFlag struct{ *flagValue }

func (b *boolFlag) IsBoolFlag() bool { return true }

// set parses v into ptr; for string slices, first resets the slice.
func set(ptr any, v string, first bool) error {
	switch p := ptr.(type) {
	case *string:
		*p = v
	case *bool:
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("%q is not a boolean", v)
		}
		*p = b
	case *int64:
		n, err := strconv.ParseInt(strings.ReplaceAll(v, "_", ""), 10, 64)
		if err != nil {
			return fmt.Errorf("%q is not an integer", v)
		}
		*p = n
	case *float64:
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return fmt.Errorf("%q is not a number", v)
		}
		*p = f
	case *time.Duration:
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("%q is not a duration (e.g. 500ms, 30s, 15m)", v)
		}
		*p = d
	case *[]string:
		if first {
			*p = nil
		}
		for _, part := range strings.Split(v, ",") {
			if part = strings.TrimSpace(part); part != "" {
				*p = append(*p, part)
			}
		}
	default:
		return fmt.Errorf("unsupported setting type %T", ptr)
	}
	return nil
}

// Reference renders the configuration reference as a Markdown table.
func Reference() string {
	var c Serve
	var b strings.Builder
	b.WriteString("| flag | environment | config key | default | meaning |\n|---|---|---|---|---|\n")
	b.WriteString("| `--config` | `GATEWAY_CONFIG` | | | YAML config file |\n")
	for _, s := range c.Settings() {
		def := s.Default
		if def != "" {
			def = "`" + def + "`"
		}
		fmt.Fprintf(&b, "| `--%s` | `%s` | `%s` | %s | %s |\n", s.Name, s.Env(), s.Key(), def, strings.ReplaceAll(s.Help+secretNote(s), "|", "\\|"))
	}
	return b.String()
}

// isOrigin reports whether s is exactly scheme://host[:port] (a trailing
// slash allowed): what IAM identity tokens are matched against.
func isOrigin(s string) bool {
	u, err := url.Parse(strings.TrimSuffix(s, "/"))
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" &&
		u.User == nil && u.Path == "" && u.RawQuery == "" && !u.ForceQuery && u.Fragment == "" && u.Opaque == ""
}
