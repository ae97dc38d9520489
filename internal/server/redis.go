package server

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"strings"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/bedrock-gateway/gateway/internal/config"
)

// newRedis connects to the configured Redis, or starts an embedded in-process
// one when no URL is given. The returned stop function closes everything.
func newRedis(cfg *config.Serve, log *slog.Logger) (redis.UniversalClient, func(), error) {
	timeout := cfg.RedisTimeout
	if cfg.RedisURL == "" {
		mr := miniredis.NewMiniRedis()
		if err := mr.Start(); err != nil {
			return nil, nil, fmt.Errorf("starting embedded redis: %w", err)
		}
		log.Warn("NO --redis-url GIVEN: USING AN EMBEDDED IN-PROCESS REDIS. STATE AND USAGE ARE LOST ON EXIT AND NOT SHARED WITH OTHER REPLICAS. FOR TRYING THE GATEWAY OUT ONLY.")
		c := redis.NewClient(&redis.Options{Addr: mr.Addr(), DialTimeout: timeout, ReadTimeout: timeout, WriteTimeout: timeout, ContextTimeoutEnabled: true})
		return c, func() { _ = c.Close(); mr.Close() }, nil
	}
	urls := strings.Split(cfg.RedisURL, ",")
	for i := range urls {
		urls[i] = strings.TrimSpace(urls[i])
	}
	first, err := redis.ParseURL(urls[0])
	if err != nil {
		return nil, nil, fmt.Errorf("parsing --redis-url: %w", err)
	}
	var c redis.UniversalClient
	switch cfg.RedisMode {
	case "cluster":
		addrs := make([]string, 0, len(urls))
		for _, u := range urls {
			o, err := redis.ParseURL(u)
			if err != nil {
				return nil, nil, fmt.Errorf("parsing --redis-url: %w", err)
			}
			addrs = append(addrs, o.Addr)
		}
		c = redis.NewClusterClient(&redis.ClusterOptions{
			Addrs: addrs, Username: first.Username, Password: first.Password, TLSConfig: tlsOf(first),
			DialTimeout: timeout, ReadTimeout: timeout, WriteTimeout: timeout, ContextTimeoutEnabled: true,
		})
	case "sentinel":
		addrs := make([]string, 0, len(urls))
		for _, u := range urls {
			o, err := redis.ParseURL(u)
			if err != nil {
				return nil, nil, fmt.Errorf("parsing --redis-url: %w", err)
			}
			addrs = append(addrs, o.Addr)
		}
		c = redis.NewFailoverClient(&redis.FailoverOptions{
			MasterName: cfg.RedisMasterName, SentinelAddrs: addrs,
			Username: first.Username, Password: first.Password, DB: first.DB, TLSConfig: tlsOf(first),
			DialTimeout: timeout, ReadTimeout: timeout, WriteTimeout: timeout, ContextTimeoutEnabled: true,
		})
	default:
		first.DialTimeout, first.ReadTimeout, first.WriteTimeout = timeout, timeout, timeout
		// Honour per-call context deadlines (the quota path's timeouts) rather
		// than only the socket timeouts.
		first.ContextTimeoutEnabled = true
		c = redis.NewClient(first)
	}
	return c, func() { _ = c.Close() }, nil
}

func tlsOf(o *redis.Options) *tls.Config {
	if o.TLSConfig == nil {
		return nil
	}
	return o.TLSConfig
}
