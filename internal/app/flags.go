package app

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"strings"

	"github.com/bedrock-gateway/gateway/internal/cli"
	"github.com/bedrock-gateway/gateway/internal/config"
)

// loadConfig runs config.Load for cmd ("serve" or "config validate"). -h
// prints cmd's usage: header, when given, replaces serve's description
// above the flag list. A bad flag is a one-line *cli.UsageError with a
// did-you-mean, not the complaint followed by every flag.
func loadConfig(cmd, header string, args []string, env Env) (*config.Serve, error) {
	// config.Load writes to out only for flag errors and -h.
	var out bytes.Buffer
	cfg, err := config.Load(args, env.Getenv, &out)
	switch {
	case errors.Is(err, flag.ErrHelp):
		text := out.String()
		if _, flags, ok := strings.Cut(text, "\nFlags:\n"); ok && header != "" {
			text = header + "\nFlags:\n" + flags
		}
		fmt.Fprint(env.Stderr, text)
		return nil, err
	case err != nil && out.Len() > 0:
		names := []string{"config"}
		for _, s := range (&config.Serve{}).Settings() {
			names = append(names, s.Name)
		}
		return nil, cli.FlagError("gateway "+cmd, err, names)
	}
	return cfg, err
}
