package app

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/bedrock-gateway/gateway/internal/bedrock"
	"github.com/bedrock-gateway/gateway/internal/cli"
	"github.com/bedrock-gateway/gateway/internal/config"
	"github.com/bedrock-gateway/gateway/internal/metering"
	"github.com/bedrock-gateway/gateway/internal/state"
)

const configUsage = `Usage: gateway config <subcommand>

Subcommands:
  validate [serve flags]   check a configuration as serve would load it, and every file it names
  reference                print the configuration reference (Markdown)

Run "gateway config validate -h" for its flags.
`

const configValidateUsage = `Usage: gateway config validate [serve flags]

Loads a configuration exactly as "gateway serve" would (flags, GATEWAY_* variables, the
--config file) and checks it and every file it names (bootstrap state, prices, model
table, TLS certificate) without starting anything. Prints "configuration is valid" or
every problem at once.
`

const configReferenceUsage = `Usage: gateway config reference

Prints the configuration reference (Markdown): every setting with its flag, environment
variable, YAML key and default.
`

func configCmd(args []string, env Env) error {
	if len(args) == 0 {
		fmt.Fprint(env.Stderr, configUsage)
		return ErrUsage
	}
	switch args[0] {
	case "-h", "--help", "-help", "help":
		fmt.Fprint(env.Stderr, configUsage)
		return nil
	case "reference":
		if len(args) > 1 {
			if isHelp(args[1]) {
				fmt.Fprint(env.Stderr, configReferenceUsage)
				return nil
			}
			return &cli.UsageError{Cmd: "gateway config reference", Msg: fmt.Sprintf("gateway config reference: unexpected argument %q", args[1])}
		}
		fmt.Fprint(env.Stdout, config.Reference())
		return nil
	case "validate":
		cfg, err := loadConfig("config validate", configValidateUsage, args[1:], env)
		if errors.Is(err, flag.ErrHelp) {
			return nil // help was asked for and printed
		}
		if ue := (*cli.UsageError)(nil); errors.As(err, &ue) {
			return err
		}
		var errs []error
		if err != nil {
			errs = append(errs, err)
		}
		if cfg != nil && cfg.ModelMaxOutputFile != "" {
			if _, err := bedrock.LoadMaxOutput(cfg.ModelMaxOutputFile); err != nil {
				errs = append(errs, fmt.Errorf("--model-max-output-file: %w", err))
			}
		}
		if cfg != nil {
			errs = append(errs, checkFiles(cfg)...)
		}
		if cfg != nil && cfg.Bootstrap != "" {
			st, err := state.LoadFile(cfg.Bootstrap)
			if err == nil {
				st.Normalize()
				if err = st.ResolveSecrets(env.LookupEnv); err == nil {
					err = st.Validate()
				}
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("bootstrap state %s:\n%w", cfg.Bootstrap, err))
			}
		}
		if len(errs) > 0 {
			return fmt.Errorf("configuration is invalid:\n%w", errors.Join(errs...))
		}
		fmt.Fprintln(env.Stdout, "configuration is valid")
		return nil
	}
	msg := fmt.Sprintf("gateway config: unknown subcommand %q", args[0])
	if s := cli.Suggest(args[0], []string{"validate", "reference"}); s != "" {
		msg += " (did you mean " + s + "?)"
	}
	return &cli.UsageError{Cmd: "gateway config", Msg: msg}
}

func isHelp(arg string) bool {
	return arg == "-h" || arg == "--help" || arg == "-help"
}

// checkFiles loads what serve would load from the files and names the
// configuration gives (the bootstrap state and the model table are checked
// above), so `config validate` fails exactly where `serve` would.
func checkFiles(cfg *config.Serve) []error {
	var errs []error
	if cfg.PricesFile != "" {
		if _, err := metering.LoadPrices(cfg.PricesFile); err != nil {
			errs = append(errs, fmt.Errorf("--prices-file: %w", err))
		}
	}
	if cfg.TLSCert != "" && cfg.TLSKey != "" {
		if _, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey); err != nil {
			errs = append(errs, fmt.Errorf("--tls-cert/--tls-key: %w", err))
		}
	}
	if _, err := time.LoadLocation(cfg.TimeZone); err != nil {
		errs = append(errs, fmt.Errorf("--time-zone: %w", err))
	}
	return errs
}
