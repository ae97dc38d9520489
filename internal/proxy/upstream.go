package proxy

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"go.opentelemetry.io/otel/propagation"

	"github.com/bedrock-gateway/gateway/internal/bedrock"
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

var (
	errHeaderTimeout = errors.New("upstream response header timeout")
	errDrainTimeout  = errors.New("drain timeout after client disconnect")
)

// upstreamRequest builds the signed request to Bedrock.
// traceCtx carries the upstream span, injected as W3C trace context before signing.
func (h *Handler) upstreamRequest(ctx, traceCtx context.Context, r *http.Request, c *call) (*http.Request, error) {
	u, region := h.upstreamFor(c)
	if c.route.Op.HasModel() {
		u.RawPath = bedrock.ModelPath(c.route.Op, c.decision.UpstreamModel)
	} else {
		u.RawPath = rawPath(r)
	}
	p, err := pathUnescape(u.RawPath)
	if err != nil {
		return nil, bedrock.Validation("The path contains a malformed percent-encoded label.")
	}
	u.Path = p
	if u.RawQuery, err = bedrock.UpstreamQuery(c.route.Op, r.URL.RawQuery); err != nil {
		return nil, err
	}
	var body io.Reader = http.NoBody
	if len(c.body) > 0 {
		body = bytes.NewReader(c.body)
	}
	out, err := http.NewRequestWithContext(ctx, r.Method, u.String(), body)
	if err != nil {
		return nil, err
	}
	// NewRequest re-parses the URL; pin the single-encoded path we built.
	out.URL.Path, out.URL.RawPath = u.Path, u.RawPath
	copyRequestHeaders(out.Header, r.Header)
	h.prop.Inject(traceCtx, propagation.HeaderCarrier(out.Header))
	out.ContentLength = int64(len(c.body))
	if len(c.body) == 0 && r.Method == http.MethodGet {
		out.Body = nil
		out.ContentLength = 0
	}
	creds, err := h.opts.Credentials.Retrieve(ctx)
	if err != nil {
		h.opts.Logger.Error("retrieving hub credentials", "error", err)
		return nil, bedrock.Unavailable("The gateway could not obtain its upstream credentials.")
	}
	var hashHex [64]byte
	hex.Encode(hashHex[:], c.bodyHash[:])
	if err := h.signer.SignHTTP(ctx, creds, out, string(hashHex[:]), "bedrock", region, time.Now().UTC()); err != nil {
		return nil, err
	}
	return out, nil
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
