// Package console serves the web console on the ops listener. This file and
// its neighbours session*.go hold its sign-in: an admin token exchanged for a
// session kept in Redis (so any replica serves any signed-in user), carried
// by the bgw_session cookie, with a CSRF token every change must present.
package console

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/time/rate"

	"github.com/bedrock-gateway/gateway/internal/opsauth"
)

// CookieName is the session cookie.
const CookieName = "bgw_session"

// CSRFHeader carries the session's CSRF token on every change.
const CSRFHeader = "X-CSRF-Token"

// Session defaults (--console-session-idle, --console-session-max).
const (
	DefaultIdle = 30 * time.Minute
	DefaultMax  = 12 * time.Hour
)

// SessionOptions configure Sessions.
type SessionOptions struct {
	// Client is the state store's Redis client; required.
	Client redis.UniversalClient
	// Prefix of the session keys; default "gw" (the store's).
	Prefix string
	// Tokens are the admin tokens accepted now; required. A session is
	// checked against them on every use.
	Tokens opsauth.Source
	// Idle ends a session unused for this long (sliding); zero means
	// DefaultIdle. Max ends it this long after sign-in however much it is
	// used; zero means DefaultMax.
	Idle, Max time.Duration
	// SecureCookie marks the cookie Secure even on plain-HTTP requests (a
	// TLS-terminating proxy in front); requests over TLS always get it.
	SecureCookie bool
	// Timeout bounds each Redis call; zero means 2 seconds.
	Timeout time.Duration
	// Now is the clock of expiry; nil means time.Now.
	Now func() time.Time
	// Logger; nil discards.
	Logger *slog.Logger
}

// Sessions are the console's sign-in sessions.
type Sessions struct {
	rdb     redis.UniversalClient
	prefix  string
	tokens  opsauth.Source
	idle    time.Duration
	max     time.Duration
	secure  bool
	timeout time.Duration
	now     func() time.Time
	log     *slog.Logger
	touch   *redis.Script
	// logins bounds sign-in attempts per replica: a token is long and
	// random, but nothing else slows down guessing one.
	logins *rate.Limiter
}

// NewSessions returns the console sessions.
func NewSessions(opts SessionOptions) *Sessions {
	m := &Sessions{
		rdb: opts.Client, prefix: opts.Prefix, tokens: opts.Tokens, idle: opts.Idle, max: opts.Max,
		secure: opts.SecureCookie, timeout: opts.Timeout, now: opts.Now, log: opts.Logger,
		touch:  redis.NewScript(touchLua),
		logins: rate.NewLimiter(5, 20),
	}
	if m.prefix == "" {
		m.prefix = "gw"
	}
	if m.idle <= 0 {
		m.idle = DefaultIdle
	}
	if m.max <= 0 {
		m.max = DefaultMax
	}
	if m.timeout <= 0 {
		m.timeout = 2 * time.Second
	}
	if m.now == nil {
		m.now = time.Now
	}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	return m
}

// Session fields in Redis (a hash per session).
const (
	fieldDigest  = "token_sha256" // hex SHA-256 of the admin token signed in with
	fieldCSRF    = "csrf"
	fieldCreated = "created_ms"
	fieldSeen    = "seen_ms"
)

// touchLua records a use of a session that still exists: a session signed
// out by another request must not come back as a hash of one field.
const touchLua = `
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('HSET', KEYS[1], 'seen_ms', ARGV[1])
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0`

// key is a session's Redis key: it holds the SHA-256 of the session ID,
// never the ID, so what Redis shows (a dump, MONITOR) opens no session.
func (m *Sessions) key(id string) string {
	sum := sha256.Sum256([]byte(id))
	return m.prefix + ":console:session:" + hex.EncodeToString(sum[:])
}

// session is one signed-in session as read from Redis.
type session struct {
	principal opsauth.Principal
	csrf      string
	created   time.Time
	seen      time.Time
}

// expiresAt is when the session ends if it is not used again.
func (m *Sessions) expiresAt(s *session) time.Time {
	idle, abs := s.seen.Add(m.idle), s.created.Add(m.max)
	if abs.Before(idle) {
		return abs
	}
	return idle
}

// randomToken returns 32 random bytes, base64url without padding.
func randomToken() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("reading random bytes: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// validID says whether a cookie value has the form of a session ID, so that
// garbage never reaches Redis.
func validID(id string) bool {
	if len(id) != 43 {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(id)
	return err == nil
}

// create stores a new session for the token with the given digest.
func (m *Sessions) create(ctx context.Context, p opsauth.Principal, digest [sha256.Size]byte) (id string, s *session, err error) {
	id, err = randomToken()
	if err != nil {
		return "", nil, err
	}
	csrf, err := randomToken()
	if err != nil {
		return "", nil, err
	}
	now := m.now()
	s = &session{principal: p, csrf: csrf, created: now, seen: now}
	ctx, cancel := context.WithTimeout(ctx, m.timeout)
	defer cancel()
	key := m.key(id)
	_, err = m.rdb.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
		pipe.HSet(ctx, key,
			fieldDigest, hex.EncodeToString(digest[:]),
			fieldCSRF, csrf,
			fieldCreated, strconv.FormatInt(now.UnixMilli(), 10),
			fieldSeen, strconv.FormatInt(now.UnixMilli(), 10))
		pipe.PExpire(ctx, key, m.ttl(s, now))
		return nil
	})
	if err != nil {
		return "", nil, fmt.Errorf("storing console session: %w", err)
	}
	return id, s, nil
}

// ttl is how long Redis keeps a session after a use at now: until it would
// expire anyway. Expiry itself is decided on use, by the injected clock;
// the TTL only clears abandoned sessions away.
func (m *Sessions) ttl(s *session, now time.Time) time.Duration {
	d := m.expiresAt(s).Sub(now)
	if d < time.Second {
		d = time.Second
	}
	return d
}

// errNoSession means the request carries no valid session.
var errNoSession = errors.New("console: no valid session")

// lookup returns the request's session, touched (its idle expiry slides);
// errNoSession when there is none: no cookie, expired, signed out, or its
// token gone from the token set. The session's principal is the token's as
// it stands now (a changed role applies at once).
func (m *Sessions) lookup(r *http.Request) (id string, s *session, err error) {
	c, err := r.Cookie(CookieName)
	if err != nil || !validID(c.Value) {
		return "", nil, errNoSession
	}
	id = c.Value
	ctx, cancel := context.WithTimeout(r.Context(), m.timeout)
	defer cancel()
	key := m.key(id)
	h, err := m.rdb.HGetAll(ctx, key).Result()
	if err != nil {
		return "", nil, fmt.Errorf("reading console session: %w", err)
	}
	digestHex, csrf := h[fieldDigest], h[fieldCSRF]
	created, err1 := strconv.ParseInt(h[fieldCreated], 10, 64)
	seen, err2 := strconv.ParseInt(h[fieldSeen], 10, 64)
	var digest [sha256.Size]byte
	n, err3 := hex.Decode(digest[:], []byte(digestHex))
	if len(h) == 0 || csrf == "" || err1 != nil || err2 != nil || err3 != nil || n != sha256.Size {
		return "", nil, errNoSession
	}
	s = &session{csrf: csrf, created: time.UnixMilli(created), seen: time.UnixMilli(seen)}
	now := m.now()
	end := func(why string) (string, *session, error) {
		m.log.InfoContext(ctx, "console session ended", "reason", why)
		if err := m.rdb.Del(ctx, key).Err(); err != nil {
			m.log.WarnContext(ctx, "deleting an ended console session", "error", err)
		}
		return "", nil, errNoSession
	}
	if !now.Before(m.expiresAt(s)) {
		return end("expired")
	}
	p, ok := m.tokens.Current().Lookup(digest)
	if !ok {
		return end("its admin token is no longer accepted")
	}
	s.principal, s.seen = p, now
	if err := m.touch.Run(ctx, m.rdb, []string{key}, strconv.FormatInt(now.UnixMilli(), 10), m.ttl(s, now).Milliseconds()).Err(); err != nil {
		return "", nil, fmt.Errorf("recording console session use: %w", err)
	}
	return id, s, nil
}

// Resolve implements admin.SessionResolver: the principal and CSRF token of
// the request's session.
func (m *Sessions) Resolve(r *http.Request) (opsauth.Principal, string, bool, error) {
	_, s, err := m.lookup(r)
	if errors.Is(err, errNoSession) {
		return opsauth.Principal{}, "", false, nil
	}
	if err != nil {
		return opsauth.Principal{}, "", false, err
	}
	return s.principal, s.csrf, true, nil
}

// end deletes a session.
func (m *Sessions) end(ctx context.Context, id string) error {
	ctx, cancel := context.WithTimeout(ctx, m.timeout)
	defer cancel()
	if err := m.rdb.Del(ctx, m.key(id)).Err(); err != nil {
		return fmt.Errorf("deleting console session: %w", err)
	}
	return nil
}
