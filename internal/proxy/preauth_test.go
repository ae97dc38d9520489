package proxy

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/smithy-go/auth/bearer"
)

// These tests send hand-built requests over raw connections: they play an
// attacker (or a broken client) that declares a large body and then stalls,
// which no SDK does.

// devAPIKey is an API key of the development account (in testState).
const devAPIKey = "bgw-dev-api-key-0000000000000000000000000000"

// emptySHA256 is the payload hash of an empty body.
const emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// knownKeyHeaders signs a POST of path with the development key over an empty
// body: the headers pass every check made before the body, so the gateway
// goes on to read whatever body follows (and then refuses its signature).
func knownKeyHeaders(t testing.TB, host, path string) http.Header {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://"+host+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: devAKID, SecretAccessKey: devSecret},
		req, emptySHA256, "bedrock", "us-east-1", time.Now()); err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	return req.Header
}

// sendHead opens a connection and sends a request's head declaring
// contentLength body bytes, and then the first bytes of that body.
func sendHead(t testing.TB, addr, path string, hdr http.Header, contentLength int64, body []byte) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	var b strings.Builder
	b.WriteString("POST " + path + " HTTP/1.1\r\nHost: " + addr + "\r\nContent-Length: " + strconv.FormatInt(contentLength, 10) + "\r\n")
	for k, vs := range hdr {
		for _, v := range vs {
			b.WriteString(k + ": " + v + "\r\n")
		}
	}
	b.WriteString("\r\n")
	if _, err := io.WriteString(conn, b.String()); err != nil {
		t.Fatal(err)
	}
	if len(body) > 0 {
		// The gateway may stop reading (and close) before all of it is in.
		go func() { _, _ = conn.Write(body) }()
	}
	return conn
}

// readAnswer reads the gateway's response from conn.
func readAnswer(t testing.TB, conn net.Conn) (*http.Response, *bufio.Reader) {
	t.Helper()
	// A deadlock guard, not a performance bound: the gateway must answer
	// without the rest of the body, which never comes.
	_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no answer while the body stalls: %v", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp, br
}

// wantClosed checks that the gateway closed the connection after answering.
func wantClosed(t testing.TB, br *bufio.Reader) {
	t.Helper()
	// A reset is a close too: the kernel answers with RST when the server
	// closes a socket whose unread body bytes are still in its buffer.
	if _, err := br.ReadByte(); !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("connection still open after the answer (read: %v)", err)
	}
}

// TestRefusedBeforeBodyHoldsNoMemory reproduces the attack: connections that
// declare a 25 MB body with a credential that cannot be valid, and stall.
// Each must be refused at once without its body being read, and the heap must
// not grow with the declared sizes. Not parallel: it measures the heap.
func TestRefusedBeforeBodyHoldsNoMemory(t *testing.T) {
	h := newHarness(t, harnessOptions{proxy: func(o *Options) {
		o.BehindTLSProxy = true // so that an unknown API key is looked up, not refused for plain HTTP
	}})
	addr := h.gateway.Listener.Addr().String()
	const path = "/model/support-llm/converse"
	stale := knownKeyHeaders(t, addr, path)
	stale.Set("X-Amz-Date", time.Now().Add(-10*time.Minute).UTC().Format("20060102T150405Z"))
	date := time.Now().UTC().Format("20060102T150405Z")
	unknownKey := "AWS4-HMAC-SHA256 Credential=GWUNKNOWN00000000001/" + date[:8] + "/us-east-1/bedrock/aws4_request, SignedHeaders=host;x-amz-date, Signature=" + strings.Repeat("0", 64)
	cases := []struct {
		name string
		hdr  http.Header
		want string
	}{
		{"garbage Authorization", http.Header{"Authorization": {"x"}}, "InvalidSignatureException"},
		{"no Authorization", http.Header{}, "UnrecognizedClientException"},
		{"unknown access key", http.Header{"Authorization": {unknownKey}, "X-Amz-Date": {date}}, "UnrecognizedClientException"},
		{"unknown API key", http.Header{"Authorization": {"Bearer bgw-not-a-key"}}, "UnrecognizedClientException"},
		{"known key, signed too long ago", stale, "InvalidSignatureException"},
	}
	const perCase = 4 // 20 connections
	const declared = 25_000_000

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	var conns []net.Conn
	for _, tc := range cases {
		for range perCase {
			conns = append(conns, sendHead(t, addr, path, tc.hdr, declared, []byte(`{"messages":[`)))
		}
	}
	var readers []*bufio.Reader
	for i, conn := range conns {
		tc := cases[i/perCase]
		resp, br := readAnswer(t, conn)
		if resp.StatusCode != http.StatusForbidden || resp.Header.Get("X-Amzn-Errortype") != tc.want {
			t.Fatalf("%s: %d %s, want 403 %s", tc.name, resp.StatusCode, resp.Header.Get("X-Amzn-Errortype"), tc.want)
		}
		if !resp.Close {
			t.Errorf("%s: the answer does not close the connection", tc.name)
		}
		readers = append(readers, br)
	}
	// Measured while every attacking connection is still open on our side.
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	growth := int64(after.HeapInuse) - int64(before.HeapInuse)
	t.Logf("heap in use grew by %d bytes for %d connections declaring %d bytes each", growth, len(conns), declared)
	if growth > 8<<20 {
		t.Fatalf("heap in use grew by %d bytes for %d refused connections", growth, len(conns))
	}
	for _, br := range readers {
		wantClosed(t, br)
	}
	if n := h.handler.bodyBytes.Load(); n != 0 {
		t.Fatalf("%d body bytes still charged", n)
	}
	if n := len(h.sim.Requests()); n != 0 {
		t.Fatalf("refused requests reached the upstream (%d)", n)
	}
}

// TestRefusedBeforeBodyClosesConnection: a short declared body that never
// comes must not keep the refused connection (and its goroutine) open.
func TestRefusedBeforeBodyClosesConnection(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	addr := h.gateway.Listener.Addr().String()
	for _, hdr := range []http.Header{{"Authorization": {"x"}}, {}} {
		conn := sendHead(t, addr, "/model/support-llm/converse", hdr, 1000, []byte(`{"messages":[`))
		resp, br := readAnswer(t, conn)
		if resp.StatusCode != http.StatusForbidden || !resp.Close {
			t.Fatalf("got %d (close %v), want 403 closing the connection", resp.StatusCode, resp.Close)
		}
		wantClosed(t, br)
	}
}

// TestStalledBodyTimesOut: a known key's body is read under BodyReadTimeout;
// a body that stalls gets RequestTimeoutException (408), on HTTP/1.1 and h2c.
func TestStalledBodyTimesOut(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{proxy: func(o *Options) { o.BodyReadTimeout = 100 * time.Millisecond }})
	addr := h.gateway.Listener.Addr().String()
	const path = "/model/support-llm/converse"

	t.Run("HTTP/1.1", func(t *testing.T) {
		t.Parallel()
		conn := sendHead(t, addr, path, knownKeyHeaders(t, addr, path), 1000, []byte(`{"messages":[`))
		resp, br := readAnswer(t, conn)
		if resp.StatusCode != http.StatusRequestTimeout || resp.Header.Get("X-Amzn-Errortype") != "RequestTimeoutException" {
			t.Fatalf("got %d %s, want 408 RequestTimeoutException", resp.StatusCode, resp.Header.Get("X-Amzn-Errortype"))
		}
		wantClosed(t, br)
	})
	t.Run("h2c", func(t *testing.T) {
		t.Parallel()
		var p http.Protocols
		p.SetUnencryptedHTTP2(true)
		client := &http.Client{Transport: &http.Transport{Protocols: &p}}
		t.Cleanup(client.CloseIdleConnections)
		pr, pw := io.Pipe()
		defer pw.Close()
		// A deadlock guard, not a performance bound.
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+path, pr)
		if err != nil {
			t.Fatal(err)
		}
		req.Header = knownKeyHeaders(t, addr, path)
		req.ContentLength = 1000
		go func() { _, _ = pw.Write([]byte(`{"messages":[`)) }() // then nothing
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.ProtoMajor != 2 || resp.StatusCode != http.StatusRequestTimeout || resp.Header.Get("X-Amzn-Errortype") != "RequestTimeoutException" {
			t.Fatalf("got HTTP/%d %d %s, want 408 RequestTimeoutException over HTTP/2", resp.ProtoMajor, resp.StatusCode, resp.Header.Get("X-Amzn-Errortype"))
		}
	})
}

// TestInflightBodyBudget: bodies being received count against one budget;
// the request that would exceed it gets ServiceUnavailableException (503)
// and its connection is closed; an answered request releases what it held.
func TestInflightBodyBudget(t *testing.T) {
	t.Parallel()
	const budget = 64 << 10
	h := newHarness(t, harnessOptions{proxy: func(o *Options) { o.MaxInflightBodyBytes = budget }})
	addr := h.gateway.Listener.Addr().String()
	const path = "/model/support-llm/converse"

	conn := sendHead(t, addr, path, knownKeyHeaders(t, addr, path), 1<<20, make([]byte, 256<<10))
	resp, br := readAnswer(t, conn)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("X-Amzn-Errortype") != "ServiceUnavailableException" || !resp.Close {
		t.Fatalf("got %d %s (close %v), want 503 ServiceUnavailableException closing the connection",
			resp.StatusCode, resp.Header.Get("X-Amzn-Errortype"), resp.Close)
	}
	wantClosed(t, br)
	// The handler has returned before an HTTP/1 answer is flushed.
	if n := h.handler.bodyBytes.Load(); n != 0 {
		t.Fatalf("%d body bytes still charged after the answer", n)
	}
	// Ordinary calls fit in the budget once it is free again.
	c := h.client(t, devAKID, devSecret)
	if _, err := converse(context.Background(), c, "support-llm"); err != nil {
		t.Fatal(err)
	}
	if n := h.handler.bodyBytes.Load(); n != 0 {
		t.Fatalf("%d body bytes still charged after an answered call", n)
	}
}

// TestBearerNeedsTLS: API keys are refused over plain HTTP, before the key is
// looked up or the body read, unless a TLS-terminating proxy is declared.
func TestBearerNeedsTLS(t *testing.T) {
	t.Parallel()
	const path = "/model/support-llm/converse"
	body := []byte(`{"messages":[{"role":"user","content":[{"text":"hi"}]}]}`)

	t.Run("plain HTTP refused", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, harnessOptions{})
		addr := h.gateway.Listener.Addr().String()
		// The Go SDK never sends a bearer token over http://; other clients may.
		conn := sendHead(t, addr, path, http.Header{"Authorization": {"Bearer " + devAPIKey}}, 25_000_000, body)
		resp, br := readAnswer(t, conn)
		if resp.StatusCode != http.StatusForbidden || resp.Header.Get("X-Amzn-Errortype") != "UnrecognizedClientException" {
			t.Fatalf("got %d %s, want 403 UnrecognizedClientException", resp.StatusCode, resp.Header.Get("X-Amzn-Errortype"))
		}
		wantClosed(t, br)
		if n := len(h.sim.Requests()); n != 0 {
			t.Fatalf("a bearer call over plain HTTP reached the upstream (%d)", n)
		}
	})
	t.Run("plain HTTP behind a TLS proxy", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, harnessOptions{proxy: func(o *Options) { o.BehindTLSProxy = true }})
		req, _ := http.NewRequest(http.MethodPost, h.gateway.URL+path, strings.NewReader(string(body)))
		req.Header.Set("Authorization", "Bearer "+devAPIKey)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("got %d %s", resp.StatusCode, resp.Header.Get("X-Amzn-Errortype"))
		}
	})
	t.Run("HTTPS with the SDK", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, harnessOptions{tls: true})
		c := h.client(t, "", "", func(o *bedrockruntime.Options) {
			o.HTTPClient = h.gateway.Client()
			o.BearerAuthTokenProvider = bearer.StaticTokenProvider{Token: bearer.Token{Value: devAPIKey}}
			o.AuthSchemePreference = []string{"httpBearerAuth"}
		})
		if _, err := converse(context.Background(), c, "support-llm"); err != nil {
			t.Fatal(err)
		}
		if obs := lastObserved(t, h.sim); obs.Status != http.StatusOK {
			t.Fatalf("upstream answered %d", obs.Status)
		}
	})
}

func converse(ctx context.Context, c *bedrockruntime.Client, model string) (*bedrockruntime.ConverseOutput, error) {
	return c.Converse(ctx, &bedrockruntime.ConverseInput{ModelId: aws.String(model), Messages: userMessage("hello there")})
}
