package app

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/bedrock-gateway/gateway/internal/bedrock"
	"github.com/bedrock-gateway/gateway/internal/config"
	"github.com/bedrock-gateway/gateway/internal/metering"
	"github.com/bedrock-gateway/gateway/internal/state"
)

func configCmd(args []string, env Env) error {
	if len(args) == 0 {
		fmt.Fprint(env.Stderr, "Usage: gateway config validate [serve flags] | gateway config reference\n")
		return ErrUsage
	}
	switch args[0] {
	case "reference":
		fmt.Fprint(env.Stdout, config.Reference())
		return nil
	case "validate":
		cfg, err := config.Load(args[1:], env.Getenv, env.Stderr)
		if errors.Is(err, flag.ErrHelp) {
			return nil // help was asked for and printed
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
	fmt.Fprintf(env.Stderr, "gateway config: unknown subcommand %q\n", args[0])
	return ErrUsage
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
