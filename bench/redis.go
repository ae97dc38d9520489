package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"
)

// redisCall sends one command to Redis in RESP and returns the reply's text (a
// simple string or a bulk string). Enough for INFO and CONFIG RESETSTAT.
func redisCall(addr string, args ...string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := c.Write([]byte(b.String())); err != nil {
		return "", err
	}
	br := bufio.NewReader(c)
	line, err := br.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	switch {
	case strings.HasPrefix(line, "+"):
		return line[1:], nil
	case strings.HasPrefix(line, "$"):
		n, err := strconv.Atoi(line[1:])
		if err != nil || n < 0 {
			return "", fmt.Errorf("redis: bad bulk length %q", line)
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(br, buf); err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	default:
		return "", fmt.Errorf("redis: %s", line)
	}
}

// redisCommandStat is one line of INFO commandstats.
type redisCommandStat struct {
	Command     string
	Calls       int64
	UsecPerCall float64
}

// parseCommandStats reads INFO commandstats, busiest command first.
func parseCommandStats(info string) []redisCommandStat {
	var out []redisCommandStat
	for _, line := range strings.Split(info, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":")
		cmd, isStat := strings.CutPrefix(name, "cmdstat_")
		if !ok || !isStat {
			continue
		}
		s := redisCommandStat{Command: cmd}
		for _, kv := range strings.Split(rest, ",") {
			k, v, _ := strings.Cut(kv, "=")
			switch k {
			case "calls":
				s.Calls, _ = strconv.ParseInt(v, 10, 64)
			case "usec_per_call":
				s.UsecPerCall, _ = strconv.ParseFloat(v, 64)
			}
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Calls > out[j].Calls })
	return out
}

// redisCounters are cumulative counts read at the edges of a measured window.
type redisCounters struct {
	RoundTrips float64 // the gateway's gateway_redis_round_trips_total; NaN when not read
	Commands   float64 // Redis's total_commands_processed; NaN when not read
}

// redisCounters reads Redis's command count and, for a gateway run, the
// gateway's round-trip counter.
func (h *harness) redisCounters(ctx context.Context, gateway bool) redisCounters {
	rc := redisCounters{RoundTrips: math.NaN(), Commands: math.NaN()}
	if gateway {
		if v, ok := h.scrape(ctx, "gateway_redis_round_trips_total")["gateway_redis_round_trips_total"]; ok {
			rc.RoundTrips = v
		}
	}
	if info, err := redisCall(h.redisAddr, "INFO", "stats"); err == nil {
		for _, line := range strings.Split(info, "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "total_commands_processed:"); ok {
				if n, err := strconv.ParseFloat(v, 64); err == nil {
					rc.Commands = n
				}
			}
		}
	}
	return rc
}

// perRequest is the work per request between start and rc. The one INFO
// the harness sends inside the window (its own, at the start or the end)
// is not the gateway's.
func (rc redisCounters) perRequest(start redisCounters, requests int) (roundTrips, commands float64) {
	if requests <= 0 {
		return math.NaN(), math.NaN()
	}
	return (rc.RoundTrips - start.RoundTrips) / float64(requests), (rc.Commands - start.Commands - 1) / float64(requests)
}
