package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// AsyncOwners remembers which member account started each asynchronous
// invocation, so GetAsyncInvoke and ListAsyncInvokes (which run under the hub's
// identity upstream) show a member only its own invocations. Keys are spread
// over the cluster (one per invocation, hashed ARN) and expire after TTL.
//
//	<prefix>:async:<sha256(arn)>  "<account>|<entitlement>"
type AsyncOwners struct {
	client  redis.UniversalClient
	prefix  string
	ttl     time.Duration
	timeout time.Duration
}

// AsyncOwnersOptions configure AsyncOwners.
type AsyncOwnersOptions struct {
	Client  redis.UniversalClient
	Prefix  string        // default "gw"
	TTL     time.Duration // default 400 days (async results outlive a month's report)
	Timeout time.Duration // per call, default 1s
}

// NewAsyncOwners returns an AsyncOwners.
func NewAsyncOwners(o AsyncOwnersOptions) *AsyncOwners {
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if o.TTL <= 0 {
		o.TTL = 400 * 24 * time.Hour
	}
	if o.Timeout <= 0 {
		o.Timeout = time.Second
	}
	return &AsyncOwners{client: o.Client, prefix: o.Prefix, ttl: o.TTL, timeout: o.Timeout}
}

func (a *AsyncOwners) key(arn string) string {
	sum := sha256.Sum256([]byte(arn))
	return a.prefix + ":async:" + hex.EncodeToString(sum[:16])
}

// Record notes that account started the invocation under entitlement, unless
// someone already did: the first record stands (SET NX), so a second account
// that obtains the same ARN (by replaying another's idempotency token) can
// never take the invocation over. It returns the owning account: account
// itself when it was recorded now or before, else the account that was.
func (a *AsyncOwners) Record(ctx context.Context, arn, account, entitlement string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	key := a.key(arn)
	// Two rounds: the record found by a failed SET NX may expire before it is
	// read, and the next SET NX then claims it.
	for range 2 {
		set, err := a.client.SetNX(ctx, key, account+"|"+entitlement, a.ttl).Result()
		if err != nil {
			return "", fmt.Errorf("recording async invocation owner: %w", err)
		}
		if set {
			return account, nil
		}
		v, err := a.client.Get(ctx, key).Result()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("reading async invocation owner: %w", err)
		}
		owner, _, _ := strings.Cut(v, "|")
		return owner, nil
	}
	return "", errors.New("recording async invocation owner: the record keeps vanishing")
}

// Owner returns who started the invocation; ok is false when nobody recorded it.
func (a *AsyncOwners) Owner(ctx context.Context, arn string) (account, entitlement string, ok bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	v, err := a.client.Get(ctx, a.key(arn)).Result()
	if errors.Is(err, redis.Nil) {
		return "", "", false, nil
	}
	if err != nil {
		return "", "", false, fmt.Errorf("reading async invocation owner: %w", err)
	}
	account, entitlement, _ = strings.Cut(v, "|")
	return account, entitlement, true, nil
}

// Owners returns the owning account of each ARN that has one, in one pipelined
// round trip (go-redis splits it by slot on a cluster).
func (a *AsyncOwners) Owners(ctx context.Context, arns []string) (map[string]string, error) {
	out := make(map[string]string, len(arns))
	if len(arns) == 0 {
		return out, nil
	}
	ctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	cmds := make([]*redis.StringCmd, len(arns))
	_, err := a.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, arn := range arns {
			cmds[i] = p.Get(ctx, a.key(arn))
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("reading async invocation owners: %w", err)
	}
	for i, c := range cmds {
		if v, err := c.Result(); err == nil {
			account, _, _ := strings.Cut(v, "|")
			out[arns[i]] = account
		}
	}
	return out, nil
}
