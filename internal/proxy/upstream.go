package proxy

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"go.opentelemetry.io/otel/propagation"

	"github.com/bedrock-gateway/gateway/internal/authn"
	"github.com/bedrock-gateway/gateway/internal/bedrock"
	"github.com/bedrock-gateway/gateway/internal/proxy/backendauth"
)

// TransportOptions tune the upstream connection pool.
type TransportOptions struct {
	ConnectTimeout time.Duration // default 5s
	IdleTimeout    time.Duration // default 90s
	MaxIdlePerHost int           // default 256
}

// NewTransport returns a pooled keep-alive transport that speaks HTTP/2 to TLS
// upstreams and does not add Accept-Encoding (usage is read from plain bytes).
func NewTransport(o TransportOptions) *http.Transport {
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 5 * time.Second
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 90 * time.Second
	}
	if o.MaxIdlePerHost <= 0 {
		o.MaxIdlePerHost = 256
	}
	d := &net.Dialer{Timeout: o.ConnectTimeout, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         d.DialContext,
		ForceAttemptHTTP2:   true,
		TLSHandshakeTimeout: o.ConnectTimeout,
		MaxIdleConns:        4 * o.MaxIdlePerHost,
		MaxIdleConnsPerHost: o.MaxIdlePerHost,
		IdleConnTimeout:     o.IdleTimeout,
		// Bodies are streamed, not buffered: the default 4 KiB connection
		// buffers keep an open stream's memory small.
		DisableCompression: true,
	}
}

// upstreamRequest builds the request to Bedrock and signs it with the hub's
// credentials: the entitlement's upstream model in the single-encoded path,
// the operation's own query parameters only, the caller's end-to-end headers,
// W3C trace context from traceCtx (injected before signing), and body with
// its payloadHash: a hex SHA-256 of a body read whole, or
// authn.StreamingEvents for the bidirectional stream's events, which the
// returned ChunkSigner signs (nil otherwise).
func (h *Handler) upstreamRequest(ctx, traceCtx context.Context, r *http.Request, c *call, body io.Reader, payloadHash string) (*http.Request, *authn.ChunkSigner, error) {
	u, region := h.upstreamFor(c)
	var err error
	switch {
	case c.profile != "":
		// Profile ARNs come from the gateway's records, so the path cache
		// stays bounded.
		u.RawPath, u.Path, err = h.paths.get(c.route.Op, c.profile)
	case c.route.Op.HasModel():
		u.RawPath, u.Path, err = h.paths.get(c.route.Op, c.decision.UpstreamModel)
	default:
		u.RawPath = rawPath(r)
		u.Path, err = pathUnescape(u.RawPath)
	}
	if err != nil {
		return nil, nil, bedrock.Validation("The path contains a malformed percent-encoded label.")
	}
	if u.RawQuery, err = bedrock.UpstreamQuery(c.route.Op, r.URL.RawQuery); err != nil {
		return nil, nil, err
	}
	out, err := http.NewRequestWithContext(ctx, r.Method, u.String(), body)
	if err != nil {
		return nil, nil, err
	}
	// NewRequest re-parses the URL; pin the single-encoded path we built.
	out.URL.Path, out.URL.RawPath = u.Path, u.RawPath
	copyRequestHeaders(out.Header, r.Header)
	h.prop.Inject(traceCtx, propagation.HeaderCarrier(out.Header))
	var signer *authn.ChunkSigner
	if payloadHash == authn.StreamingEvents {
		out.Header.Set("Content-Type", eventStreamType)
		out.ContentLength = -1 // streamed
		signer, err = h.auth.SignEvents(ctx, out, region)
	} else {
		err = h.auth.Sign(ctx, out, payloadHash, region)
	}
	if errors.Is(err, backendauth.ErrCredentials) {
		h.opts.Logger.Error("retrieving hub credentials", "error", err)
		return nil, nil, bedrock.Unavailable("The gateway could not obtain its upstream credentials.")
	}
	if err != nil {
		return nil, nil, err
	}
	return out, signer, nil
}

// modelPaths caches the upstream path, escaped and not, of each
// (operation, upstream model): escaping the model label and unescaping it
// again cost five allocations a request. Its keys come from the state's
// entitlements, never from callers; it is emptied when it outgrows
// maxModelPaths (models retired by state changes pile up otherwise).
type modelPaths struct {
	mu sync.RWMutex
	m  map[modelPathKey]modelPath
}

type modelPathKey struct {
	op    bedrock.Operation
	model string
}

type modelPath struct{ raw, path string }

const maxModelPaths = 4096

func (p *modelPaths) get(op bedrock.Operation, model string) (raw, path string, err error) {
	k := modelPathKey{op, model}
	p.mu.RLock()
	v, ok := p.m[k]
	p.mu.RUnlock()
	if ok {
		return v.raw, v.path, nil
	}
	v.raw = bedrock.ModelPath(op, model)
	if v.path, err = pathUnescape(v.raw); err != nil {
		return "", "", err
	}
	p.mu.Lock()
	if p.m == nil || len(p.m) >= maxModelPaths {
		p.m = make(map[modelPathKey]modelPath)
	}
	p.m[k] = v
	p.mu.Unlock()
	return v.raw, v.path, nil
}

func pathUnescape(s string) (string, error) {
	// Path labels were produced by EscapeLabel or sent by the client; both are valid escapes.
	var b []byte
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			if b != nil {
				b = append(b, s[i])
			}
			continue
		}
		if b == nil {
			b = append(make([]byte, 0, len(s)), s[:i]...)
		}
		if i+2 >= len(s) {
			return "", errors.New("bad escape")
		}
		v, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
		if err != nil {
			return "", errors.New("bad escape")
		}
		b = append(b, byte(v))
		i += 2
	}
	if b == nil {
		return s, nil
	}
	return string(b), nil
}

// upstreamFor returns the base URL and signing region of a call: the
// entitlement's own region when it names one and per-entitlement regions are on.
func (h *Handler) upstreamFor(c *call) (url.URL, string) {
	if h.opts.PerEntitlementRegion && c.decision != nil {
		if r := c.decision.Entitlement.Region; r != "" && r != h.opts.Region {
			u := h.upstream
			u.Host = "bedrock-runtime." + r + ".amazonaws.com"
			return u, r
		}
	}
	return h.upstream, h.opts.Region
}
