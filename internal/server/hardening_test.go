package server

import (
	"bufio"
	"context"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/bedrock-gateway/gateway/internal/sim"
	"github.com/bedrock-gateway/gateway/internal/testutil/redistest"
	"github.com/bedrock-gateway/gateway/internal/testutil/wait"
)

// These tests play a client no SDK would be (a body that stalls, a bearer
// key over plain HTTP, raw HTTP/2 frames), so their requests are hand-built.

// stalledRequest sends a request's head and the first bytes of a body that
// then never comes, and returns the answer.
func stalledRequest(t *testing.T, addr, method, path string, hdr http.Header) *http.Response {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	var b strings.Builder
	b.WriteString(method + " " + path + " HTTP/1.1\r\nHost: " + addr + "\r\nContent-Length: 1000\r\n")
	for k, vs := range hdr {
		for _, v := range vs {
			b.WriteString(k + ": " + v + "\r\n")
		}
	}
	b.WriteString("\r\n{\"")
	if _, err := io.WriteString(conn, b.String()); err != nil {
		t.Fatal(err)
	}
	// A deadlock guard, not a performance bound.
	_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("%s %s: no answer while the body stalls: %v", method, path, err)
	}
	resp.Body.Close()
	return resp
}

// TestStalledBodiesAreTimedOut: --body-read-timeout reaches both listeners.
func TestStalledBodiesAreTimedOut(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	up := newUpstream(t, sim.Options{})
	g := startGateway(t, gatewayOptions{redis: rs.URL(), upstream: up, stateYAML: accessState,
		args: []string{"--body-read-timeout", "200ms"}})

	const path = "/model/direct/converse"
	req, _ := http.NewRequest(http.MethodPost, "http://"+g.DataAddr()+path, nil)
	emptySHA := "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: devAKID, SecretAccessKey: devSecret},
		req, emptySHA, "bedrock", "us-east-1", time.Now()); err != nil {
		t.Fatal(err)
	}
	if resp := stalledRequest(t, g.DataAddr(), http.MethodPost, path, req.Header); resp.StatusCode != http.StatusRequestTimeout ||
		resp.Header.Get("X-Amzn-Errortype") != "RequestTimeoutException" {
		t.Fatalf("data listener: %d %s, want 408 RequestTimeoutException", resp.StatusCode, resp.Header.Get("X-Amzn-Errortype"))
	}
	hdr := http.Header{"Authorization": {"Bearer " + adminToken}, "Content-Type": {"application/json"}}
	if resp := stalledRequest(t, g.OpsAddr(), http.MethodPost, "/admin/v1/apply?dry_run=true", hdr); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("ops listener: %d, want 400", resp.StatusCode)
	}
	if n := len(up.sim.Requests()); n != 0 {
		t.Fatalf("a stalled request reached the upstream (%d)", n)
	}
}

// TestBearerKeysNeedTLS: without TLS an API key is refused, unless
// --behind-tls-proxy declares a TLS-terminating load balancer in front.
func TestBearerKeysNeedTLS(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	up := newUpstream(t, sim.Options{})
	plain := startGateway(t, gatewayOptions{redis: rs.URL(), upstream: up, stateYAML: accessState})
	proxied := startGateway(t, gatewayOptions{redis: rs.URL(), upstream: up, args: []string{"--behind-tls-proxy"}})
	var issued struct {
		APIKey string `json:"api_key"`
	}
	if code := plain.admin(t, "POST", "/admin/v1/credentials", map[string]any{"account": "222222222222", "kind": "api_key", "label": "notebook"}, &issued); code != 201 {
		t.Fatalf("issuing API key: %d", code)
	}
	call := func(g *gateway) *http.Response {
		// The Go SDK never sends a bearer token over http://; other clients may.
		req, _ := http.NewRequest(http.MethodPost, g.endpoint()+"/model/direct/converse",
			strings.NewReader(`{"messages":[{"role":"user","content":[{"text":"hi"}]}],"inferenceConfig":{"maxTokens":5}}`))
		req.Header.Set("Authorization", "Bearer "+issued.APIKey)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Logf("%s: %d %s", g.endpoint(), resp.StatusCode, body)
		return resp
	}
	if resp := call(plain); resp.StatusCode != http.StatusForbidden || resp.Header.Get("X-Amzn-Errortype") != "UnrecognizedClientException" {
		t.Fatalf("bearer over plain HTTP: %d %s, want 403 UnrecognizedClientException", resp.StatusCode, resp.Header.Get("X-Amzn-Errortype"))
	}
	wait.For(t, "the API key on the second replica", 10*time.Second, func() bool { return proxied.Current().Version() >= plain.Current().Version() })
	if resp := call(proxied); resp.StatusCode != http.StatusOK {
		t.Fatalf("bearer behind a TLS proxy: %d %s", resp.StatusCode, resp.Header.Get("X-Amzn-Errortype"))
	}
}

// TestHTTP2StreamLimit reads the data listener's HTTP/2 SETTINGS (h2c with
// prior knowledge): the server announces its concurrent stream limit.
func TestHTTP2StreamLimit(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	up := newUpstream(t, sim.Options{})
	g := startGateway(t, gatewayOptions{redis: rs.URL(), upstream: up, stateYAML: accessState})
	conn, err := net.Dial("tcp", g.DataAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second)) // a deadlock guard
	// Client preface and an empty SETTINGS frame (RFC 9113 §3.4, §6.5).
	if _, err := io.WriteString(conn, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	for {
		var head [9]byte
		if _, err := io.ReadFull(br, head[:]); err != nil {
			t.Fatal(err)
		}
		length := int(head[0])<<16 | int(head[1])<<8 | int(head[2])
		payload := make([]byte, length)
		if _, err := io.ReadFull(br, payload); err != nil {
			t.Fatal(err)
		}
		if head[3] != 0x4 || head[4]&0x1 != 0 { // not SETTINGS, or an ACK
			continue
		}
		settings := map[uint16]uint32{}
		for i := 0; i+6 <= len(payload); i += 6 {
			settings[binary.BigEndian.Uint16(payload[i:])] = binary.BigEndian.Uint32(payload[i+2:])
		}
		const maxConcurrentStreamsID = 0x3
		if got, ok := settings[maxConcurrentStreamsID]; !ok || got != maxConcurrentStreams {
			t.Fatalf("SETTINGS_MAX_CONCURRENT_STREAMS = %d (sent %v), want %d; all settings %v", got, ok, maxConcurrentStreams, settings)
		}
		return
	}
}
