package server

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/bedrock-gateway/gateway/internal/config"
)

// embeddedRedisTimeout is the least Redis timeout with the embedded Redis: it
// runs in this process, so a slow answer only means a starved CPU (a laptop
// under load, a race-detector test run), never an unreachable store, and
// must not read as an outage that refuses fail_closed calls.
const embeddedRedisTimeout = 5 * time.Second

// redisTimeout is --redis-timeout, raised to embeddedRedisTimeout for the
// embedded Redis.
func redisTimeout(cfg *config.Serve) time.Duration {
	if cfg.RedisURL == "" && cfg.RedisTimeout < embeddedRedisTimeout {
		return embeddedRedisTimeout
	}
	return cfg.RedisTimeout
}

// newRedis connects to the configured Redis, or starts an embedded in-process
// one when no URL is given. The returned stop function closes everything.
func newRedis(cfg *config.Serve, log *slog.Logger) (redis.UniversalClient, func(), error) {
	timeout := redisTimeout(cfg)
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
	// Every URL is a seed (cluster) or a Sentinel (sentinel); user, password,
	// TLS and DB come from the first.
	opts := make([]*redis.Options, len(urls))
	addrs := make([]string, len(urls))
	for i, u := range urls {
		o, err := redis.ParseURL(u)
		if err != nil {
			return nil, nil, fmt.Errorf("parsing --redis-url: %w", err)
		}
		opts[i], addrs[i] = o, o.Addr
	}
	first := opts[0]
	var c redis.UniversalClient
	switch cfg.RedisMode {
	case "cluster":
		c = redis.NewClusterClient(&redis.ClusterOptions{
			Addrs: addrs, Username: first.Username, Password: first.Password, TLSConfig: first.TLSConfig,
			DialTimeout: timeout, ReadTimeout: timeout, WriteTimeout: timeout, ContextTimeoutEnabled: true,
		})
	case "sentinel":
		c = redis.NewFailoverClient(&redis.FailoverOptions{
			MasterName: cfg.RedisMasterName, SentinelAddrs: addrs,
			Username: first.Username, Password: first.Password, DB: first.DB, TLSConfig: first.TLSConfig,
			// Sentinels commonly share the data nodes' credentials.
			SentinelUsername: first.Username, SentinelPassword: first.Password,
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

// roundTripHook counts what this replica sends to Redis, one per command or
// pipeline (gateway_redis_round_trips_total): the per-request Redis cost an
// operator sizes Redis by, and what the benchmark reports per request.
type roundTripHook struct{ count func() }

func (roundTripHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h roundTripHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.count()
		return next(ctx, cmd)
	}
}

func (h roundTripHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.count()
		return next(ctx, cmds)
	}
}

var _ redis.Hook = roundTripHook{}
