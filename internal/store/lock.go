package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// releaseLockScript deletes a lock only while it still holds the caller's
// token, so a replica whose lock expired (and was taken by another) never
// releases the other's.
var releaseLockScript = redis.NewScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] then
  return redis.call("DEL", KEYS[1])
end
return 0
`)

// Lock is a held lock; Release gives it up.
type Lock struct {
	client redis.UniversalClient
	key    string
	token  string
}

// TryLock takes the lock name for ttl when no replica holds it (SET NX PX
// with a random token), under the {state} hash tag. ok is false when another
// holds it. The lock expires after ttl even if never released, so a replica
// that dies cannot block the others for longer; the holder must finish its
// work within ttl.
func (s *Store) TryLock(ctx context.Context, name string, ttl time.Duration) (_ *Lock, ok bool, err error) {
	if name == "" || ttl <= 0 {
		return nil, false, errors.New("store: a lock needs a name and a positive ttl")
	}
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, false, fmt.Errorf("lock token: %w", err)
	}
	l := &Lock{client: s.client, key: s.prefix + ":{state}:lock:" + name, token: hex.EncodeToString(b[:])}
	ok, err = s.client.SetNX(ctx, l.key, l.token, ttl).Result()
	if err != nil {
		return nil, false, fmt.Errorf("taking lock %s: %w", name, err)
	}
	if !ok {
		return nil, false, nil
	}
	return l, true, nil
}

// Release gives the lock up if this holder still has it.
func (l *Lock) Release(ctx context.Context) error {
	if err := releaseLockScript.Run(ctx, l.client, []string{l.key}, l.token).Err(); err != nil {
		return fmt.Errorf("releasing lock: %w", err)
	}
	return nil
}
