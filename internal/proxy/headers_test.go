package proxy

import (
	"net/http"
	"testing"

	"github.com/bedrock-gateway/gateway/internal/bedrock"
)

func TestCopyRequestHeadersStripsHopAndAuth(t *testing.T) {
	t.Parallel()
	src := http.Header{}
	src.Set("Connection", "keep-alive, X-Secret-Hop, x-amzn-bedrock-trace")
	src.Set("X-Secret-Hop", "1")
	src.Set("X-Amzn-Bedrock-Trace", "ENABLED") // named in Connection: hop-by-hop now
	src.Set("X-Amzn-Bedrock-Guardrailidentifier", "gr-1")
	src.Set("Keep-Alive", "timeout=5")
	src.Set("Proxy-Authorization", "Basic x")
	src.Set("Te", "trailers")
	src.Set("Upgrade", "h2c")
	src.Set("Transfer-Encoding", "chunked")
	src.Set("Authorization", "AWS4-HMAC-SHA256 Credential=...")
	src.Set("X-Amz-Date", "20260101T000000Z")
	src.Set("X-Amz-Security-Token", "tok")
	src.Set("X-Amz-Content-Sha256", "abc")
	src.Set("Accept-Encoding", "gzip")
	src.Set("X-Forwarded-For", "10.0.0.1")
	src.Set("Content-Type", "application/json")
	src.Set("Accept", "application/json")
	dst := http.Header{}
	copyRequestHeaders(dst, src)
	for _, gone := range []string{"Connection", "X-Secret-Hop", "X-Amzn-Bedrock-Trace", "Keep-Alive", "Proxy-Authorization",
		"Te", "Upgrade", "Transfer-Encoding", "Authorization", "X-Amz-Date", "X-Amz-Security-Token", "X-Amz-Content-Sha256",
		"Accept-Encoding", "X-Forwarded-For"} {
		if _, ok := dst[gone]; ok {
			t.Errorf("%s was forwarded upstream", gone)
		}
	}
	for _, kept := range []string{"Content-Type", "Accept", "X-Amzn-Bedrock-Guardrailidentifier"} {
		if dst.Get(kept) == "" {
			t.Errorf("%s was not forwarded", kept)
		}
	}
}

func TestCopyResponseHeadersStripsHop(t *testing.T) {
	t.Parallel()
	src := http.Header{}
	src.Set("Connection", "close, X-Internal")
	src.Set("X-Internal", "secret")
	src.Set("Alt-Svc", `h3=":443"`)
	src.Set("Trailer", "X-Foo")
	src.Set("Content-Length", "12")
	src.Set("X-Amzn-Requestid", "r-1")
	src.Set("X-Amzn-Bedrock-Input-Token-Count", "7")
	dst := http.Header{}
	copyResponseHeaders(dst, src)
	for _, gone := range []string{"Connection", "X-Internal", "Alt-Svc", "Trailer", "Content-Length"} {
		if _, ok := dst[gone]; ok {
			t.Errorf("%s was passed to the client", gone)
		}
	}
	if dst.Get("X-Amzn-Requestid") != "r-1" || dst.Get("X-Amzn-Bedrock-Input-Token-Count") != "7" {
		t.Errorf("end-to-end headers lost: %v", dst)
	}
}

func TestRequestIDsAreUUIDShaped(t *testing.T) {
	t.Parallel()
	var g requestIDs
	g.init()
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		id := g.next()
		if len(id) != 36 || id[8] != '-' || id[13] != '-' || id[14] != '4' || id[18] != '-' || id[23] != '-' {
			t.Fatalf("bad request ID %q", id)
		}
		if seen[id] {
			t.Fatalf("duplicate request ID %q", id)
		}
		seen[id] = true
	}
}

func TestUpstreamForEntitlementRegion(t *testing.T) {
	t.Parallel()
	h := benchHandler(t, nopQuota{})
	snap := h.opts.Snapshots.Current()
	d, err := snap.Authorize("222222222222", bedrock.OpConverse, "support-llm")
	if err != nil {
		t.Fatal(err)
	}
	ent := *d.Entitlement
	ent.Region = "eu-west-1"
	dd := *d
	dd.Entitlement = &ent
	c := &call{decision: &dd}
	if u, r := h.upstreamFor(c); u.Host != "bedrock-runtime.us-east-1.amazonaws.com" || r != "us-east-1" {
		t.Fatalf("per-entitlement regions off: %s %s", u.Host, r)
	}
	h.opts.PerEntitlementRegion = true
	if u, r := h.upstreamFor(c); u.Host != "bedrock-runtime.eu-west-1.amazonaws.com" || r != "eu-west-1" {
		t.Fatalf("per-entitlement regions on: %s %s", u.Host, r)
	}
}

// TestCopyRequestHeadersShareSafely: values are shared with the caller's
// request, but adding a value on either side never shows on the other.
func TestCopyRequestHeadersShareSafely(t *testing.T) {
	t.Parallel()
	src := http.Header{"Accept": make([]string, 1, 4)}
	src["Accept"][0] = "application/json"
	dst := http.Header{}
	copyRequestHeaders(dst, src)
	dst.Add("Accept", "text/plain")
	src.Add("Accept", "application/xml")
	if got := dst.Values("Accept"); len(got) != 2 || got[1] != "text/plain" {
		t.Errorf("upstream Accept %q", got)
	}
	if got := src.Values("Accept"); len(got) != 2 || got[1] != "application/xml" {
		t.Errorf("caller's Accept %q", got)
	}
}
