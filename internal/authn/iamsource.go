package authn

import (
	"container/list"
	"net"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/bedrock-gateway/gateway/internal/bedrock"
)

// Defaults of the STS verification budget (IAMVerifierOptions).
const (
	DefaultIAMVerifyRate          = 200 // STS verifications per second, all sources
	DefaultIAMVerifyRatePerSource = 20  // per second, one source address
	defaultIAMInflightPerSource   = 8
	// maxIAMSources bounds the per-source table: the least recently seen
	// source is forgotten first (it starts afresh with a full bucket, which
	// the overall rate still bounds).
	maxIAMSources = 10_000
)

// verifyBudget bounds what tokens that are not cached may cost: any AWS
// account can mint a token STS accepts, so without it an outsider could turn
// the gateway into an STS amplifier (or exhaust its STS quota, refusing
// members). Every STS verification takes a token from the overall bucket and
// from its source address's bucket, and holds one of the source's in-flight
// slots while it runs. Cached answers (identities and refusals) cost nothing.
type verifyBudget struct {
	overall           *rate.Limiter
	perSourceRate     rate.Limit
	perSourceBurst    int
	perSourceInflight int
	now               func() time.Time

	mu      sync.Mutex
	sources map[string]*list.Element // of *sourceBudget
	lru     list.List                // front: most recently seen
}

type sourceBudget struct {
	addr     string
	limiter  *rate.Limiter
	inflight int
}

func newVerifyBudget(overall, perSource float64, inflightPerSource int, now func() time.Time) *verifyBudget {
	return &verifyBudget{
		overall:           rate.NewLimiter(rate.Limit(overall), burstOf(overall)),
		perSourceRate:     rate.Limit(perSource),
		perSourceBurst:    burstOf(perSource),
		perSourceInflight: inflightPerSource,
		now:               now,
		sources:           make(map[string]*list.Element),
	}
}

// burstOf allows two seconds' worth at once: a fleet of pods starting
// together mints a burst of fresh tokens.
func burstOf(perSecond float64) int { return max(1, int(2*perSecond)) }

// acquire reserves one STS verification for source (an address as in
// http.Request.RemoteAddr; empty: only the overall budget applies). It
// returns the release function, or a retryable error when the budget is
// spent.
func (b *verifyBudget) acquire(source string) (release func(), _ *bedrock.Error) {
	now := b.now()
	host := sourceHost(source)
	var sb *sourceBudget
	if host != "" && b.perSourceRate > 0 {
		b.mu.Lock()
		sb = b.source(host)
		if sb.inflight >= b.perSourceInflight || !sb.limiter.AllowN(now, 1) {
			b.mu.Unlock()
			return nil, bedrock.Throttling("Too many new IAM identity tokens from this address. Reuse a token until it nears expiry, or retry shortly.", time.Second)
		}
		sb.inflight++
		b.mu.Unlock()
	}
	if !b.overall.AllowN(now, 1) {
		if sb != nil {
			b.done(sb)
		}
		return nil, bedrock.Throttling("Too many new IAM identity tokens are being verified. Please retry shortly.", time.Second)
	}
	if sb == nil {
		return func() {}, nil
	}
	return func() { b.done(sb) }, nil
}

func (b *verifyBudget) done(sb *sourceBudget) {
	b.mu.Lock()
	sb.inflight--
	b.mu.Unlock()
}

// source returns host's budget, creating it; b.mu is held.
func (b *verifyBudget) source(host string) *sourceBudget {
	if el, ok := b.sources[host]; ok {
		b.lru.MoveToFront(el)
		return el.Value.(*sourceBudget)
	}
	sb := &sourceBudget{addr: host, limiter: rate.NewLimiter(b.perSourceRate, b.perSourceBurst)}
	b.sources[host] = b.lru.PushFront(sb)
	for b.lru.Len() > maxIAMSources {
		old := b.lru.Back()
		if old.Value.(*sourceBudget).inflight > 0 {
			// Busy: keep its slots counted; the table overflows a little
			// rather than forget a source mid-verification.
			break
		}
		b.lru.Remove(old)
		delete(b.sources, old.Value.(*sourceBudget).addr)
	}
	return sb
}

// sourceHost is the IP of a RemoteAddr ("ip:port"), or the address itself
// when it has no port.
func sourceHost(addr string) string {
	if host, _, err := net.SplitHostPort(addr); err == nil {
		return host
	}
	return addr
}
