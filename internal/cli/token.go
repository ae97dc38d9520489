package cli

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"

	"github.com/bedrock-gateway/gateway/pkg/iamtoken"
)

// Environment variables of gateway token.
const (
	// EnvGatewayID is the default of --gateway-id: members do not know the
	// organization id the gateway's id derives from, so its operator tells
	// them, and they set it once.
	EnvGatewayID = "GATEWAY_ID"
	// EnvBearerToken is the variable the AWS SDKs read a Bedrock bearer token
	// from.
	EnvBearerToken = "AWS_BEARER_TOKEN_BEDROCK"
)

// tokenResult is what -o json and -o yaml print.
type tokenResult struct {
	Token     string    `json:"token"`
	GatewayID string    `json:"gateway_id"`
	Expires   time.Time `json:"expires"`
}

func runToken(ctx context.Context, args []string, env Env) error {
	// Not newFlags: minting talks to no gateway, so there is no --admin-url.
	fs := flag.NewFlagSet("gateway token", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	common := &commonFlags{fs: fs, formats: objectFormats, output: objectFormats[0]}
	fs.StringVar(&common.output, "output", common.output, "output format: "+orList(objectFormats)+" (table: the bare token)")
	fs.StringVar(&common.output, "o", common.output, "same as --output")
	profile := fs.String("profile", "", "AWS shared config profile (default: the standard credential chain, AWS_PROFILE)")
	region := fs.String("region", "", "STS region to sign for (default from the AWS config, else us-east-1)")
	gatewayID := fs.String("gateway-id", env.Getenv(EnvGatewayID), "the id of the gateway the token is for, as it prints at start and in /readyz (default from "+EnvGatewayID+")")
	endpoint := fs.String("sts-endpoint", "", "STS endpoint origin, e.g. a VPC endpoint or the simulator (default: the region's AWS STS endpoint)")
	export := fs.Bool("export", false, "print a shell line: export "+EnvBearerToken+"=<token>")
	fs.Usage = func() {
		fmt.Fprint(env.Stderr, "Usage: gateway token [--gateway-id ID] [--profile P] [--region R] [--sts-endpoint URL] [--export] [-o FORMAT]\n\n"+
			"Mints an IAM identity token: a presigned STS GetCallerIdentity request, signed with the\n"+
			"standard AWS credential chain (environment, profile, SSO, web identity/IRSA, EKS Pod\n"+
			"Identity, instance role), that proves to the gateway which IAM principal you are. Send it\n"+
			"as a bearer token (over HTTPS): "+EnvBearerToken+"=<token>. It is valid for 15 minutes;\n"+
			"long-running Go applications use pkg/iamtoken's TokenProvider instead.\n\n"+
			"  eval \"$(gateway token --export)\"\n\nFlags:\n")
		fs.SetOutput(env.Stderr)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
	pos, err := parse(fs, args)
	if err != nil {
		return done(err)
	}
	if len(pos) > 0 {
		return usageError(fs, "token: unexpected argument %q", pos[0])
	}
	if err := common.checkOutput(); err != nil {
		return err
	}
	if *export && common.output != outTable {
		return usageError(fs, "token: --export and --output %s do not go together", common.output)
	}
	id := strings.TrimSpace(*gatewayID)
	if id == "" {
		return usageError(fs, "token: no gateway id: pass --gateway-id or set %s (the gateway's operator knows it: the gateway prints it at start)", EnvGatewayID)
	}
	if strings.ContainsFunc(id, func(r rune) bool { return r < 0x21 || r > 0x7e }) {
		return usageError(fs, "token: --gateway-id %q must be printable ASCII without spaces", id)
	}
	if *endpoint != "" {
		if u, err := url.Parse(*endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
			u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
			return usageError(fs, "token: --sts-endpoint %q must be an http:// or https:// origin (no path)", *endpoint)
		}
	}
	var opts []func(*config.LoadOptions) error
	if *profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(*profile))
	}
	cfg, err := awsConfigWith(ctx, env, *region, *profile == "", opts...)
	if err != nil {
		return err
	}
	tok, err := iamtoken.Mint(ctx, cfg, iamtoken.Options{GatewayID: id, STSEndpoint: strings.TrimSuffix(*endpoint, "/")})
	if err != nil {
		return err
	}
	switch {
	case *export:
		// The token is base64url after an ASCII prefix: nothing a shell would
		// interpret, so no quoting is needed.
		_, err = fmt.Fprintf(env.Stdout, "export %s=%s\n", EnvBearerToken, tok)
		return err
	case common.output == outTable:
		_, err = fmt.Fprintln(env.Stdout, tok)
		return err
	}
	exp, err := tokenExpiry(tok)
	if err != nil {
		return err
	}
	raw, err := json.Marshal(tokenResult{Token: tok, GatewayID: id, Expires: exp})
	if err != nil {
		return err
	}
	_, err = common.printRaw(env.Stdout, raw)
	return err
}

// tokenExpiry reads when a freshly minted token expires from its own
// X-Amz-Date and X-Amz-Expires.
func tokenExpiry(tok string) (time.Time, error) {
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(tok, iamtoken.Prefix))
	if err != nil {
		return time.Time{}, fmt.Errorf("reading the minted token: %w", err)
	}
	u, err := url.Parse(string(raw))
	if err != nil {
		return time.Time{}, fmt.Errorf("reading the minted token: %w", err)
	}
	q := u.Query()
	at, err := time.Parse("20060102T150405Z", q.Get("X-Amz-Date"))
	if err != nil {
		return time.Time{}, fmt.Errorf("reading the minted token's date: %w", err)
	}
	secs, err := strconv.Atoi(q.Get("X-Amz-Expires"))
	if err != nil {
		return time.Time{}, errors.New("reading the minted token: no X-Amz-Expires")
	}
	return at.Add(time.Duration(secs) * time.Second), nil
}
