// Command healthcheck is the container image's health probe. Distroless images
// have no shell, curl or wget, and the gateway binary has no probe subcommand,
// so this small static program GETs one URL and exits 0 on a 2xx answer and 1
// otherwise, which is what Docker's HEALTHCHECK and compose's healthcheck want.
//
//	healthcheck [-timeout 2s] [URL]
//
// Without URL it probes http://127.0.0.1:<port>/healthz, the port taken from
// GATEWAY_OPS_LISTEN (the same variable `gateway serve` reads), default 9090.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Getenv, os.Stderr))
}

func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) int {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	timeout := fs.Duration("timeout", 2*time.Second, "how long to wait for the answer")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	target, err := targetURL(fs.Args(), getenv)
	if err != nil {
		fmt.Fprintln(stderr, "healthcheck:", err)
		return 2
	}
	if err := probe(ctx, target, *timeout); err != nil {
		fmt.Fprintln(stderr, "healthcheck:", err)
		return 1
	}
	return 0
}

// targetURL is the URL to probe: the argument, else /healthz on the local ops port.
func targetURL(args []string, getenv func(string) string) (string, error) {
	switch len(args) {
	case 0:
	case 1:
		return args[0], nil
	default:
		return "", errors.New("at most one URL")
	}
	port := "9090"
	if addr := getenv("GATEWAY_OPS_LISTEN"); addr != "" {
		_, p, err := net.SplitHostPort(addr)
		if err != nil || p == "" {
			return "", fmt.Errorf("GATEWAY_OPS_LISTEN %q: want host:port or :port", addr)
		}
		port = p
	}
	return "http://" + net.JoinHostPort("127.0.0.1", port) + "/healthz", nil
}

func probe(ctx context.Context, target string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return fmt.Errorf("building request: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("probing %s: %w", target, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("%s answered %s: %s", target, resp.Status, body)
	}
	return nil
}
