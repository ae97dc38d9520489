package server

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"

	"github.com/bedrock-gateway/gateway/internal/sim"
	"github.com/bedrock-gateway/gateway/internal/testutil/bidisdk"
	"github.com/bedrock-gateway/gateway/internal/testutil/redistest"
	"github.com/bedrock-gateway/gateway/internal/testutil/wait"
)

// TestMemberSeesOnlyOwnCaps: the remaining-tokens header and refusals give a
// member figures for its own caps (its share's, its account's) only, never for
// the entitlement-wide cap that every member shares.
func TestMemberSeesOnlyOwnCaps(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	up := newUpstream(t, sim.Options{})
	st := baseState + `
entitlements:
  - name: pooled
    model: amazon.nova-lite-v1:0
    limits: {monthly_tokens: 3000, account_monthly_tokens: 100000, estimate: strict}
    shares: [{target: ou-ab12-platform, monthly_tokens: 50000}, {target: "333333333333"}]
  - {name: whole, model: amazon.nova-micro-v1:0, limits: {monthly_tokens: 100000}, shares: [{target: o-testorg0001}]}
`
	g := startGateway(t, gatewayOptions{redis: rs.URL(), upstream: up, stateYAML: st})

	// reserved is what the last call reserved: strict counts a byte per token,
	// plus rawConverse's maximum of 5.
	reserved := func() int64 {
		reqs := up.sim.Requests()
		return int64(len(reqs[len(reqs)-1].Body)) + 5
	}
	tests := []struct {
		name, model, akid, secret string
		want                      func(est int64) string // the header; "" = absent
	}{
		// The share cap (50000) is tighter than the account cap; the
		// entitlement's (3000) tighter still, but not the member's to see.
		{"share binds", "pooled", devAKID, devSecret, func(est int64) string { return strconv.FormatInt(50000-est, 10) }},
		// A share without a cap of its own: the account cap is the caller's.
		{"account binds", "pooled", dsAKID, dsSecret, func(est int64) string { return strconv.FormatInt(100000-est, 10) }},
		{"only the entitlement cap", "whole", devAKID, devSecret, func(int64) string { return "" }},
	}
	for _, tt := range tests { // in turn: each reads the simulator's last request
		resp := rawConverse(t, g, tt.model, tt.akid, tt.secret)
		if got, want := resp.Header.Get("X-Gateway-Quota-Remaining-Tokens"), tt.want(reserved()); got != want {
			t.Errorf("%s: X-Gateway-Quota-Remaining-Tokens = %q, want %q", tt.name, got, want)
		}
	}

	// Spend the entitlement-wide cap: the refusal says so and when it resets,
	// without a figure of it.
	c := g.client(t, devAKID, devSecret)
	var err error
	for i := 0; i < 200 && err == nil; i++ {
		_, err = converse(context.Background(), c, "pooled", 100)
	}
	if errCode(err) != "ServiceQuotaExceededException" {
		t.Fatalf("after spending the entitlement cap: %v, want ServiceQuotaExceededException", err)
	}
	msg := err.Error()
	if !strings.Contains(msg, "monthly token quota of entitlement pooled is exhausted") || !strings.Contains(msg, "resets at") {
		t.Errorf("refusal %q does not say the entitlement's quota is exhausted and when it resets", msg)
	}
	// Drop the SDK's own numbers (status, request ID) and the reset time: no figure may remain.
	_, message, _ := strings.Cut(msg, "ServiceQuotaExceededException: ")
	message = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ`).ReplaceAllString(message, "")
	if regexp.MustCompile(`[0-9]`).MatchString(message) {
		t.Errorf("refusal %q gives figures of the entitlement-wide cap", msg)
	}
}

// TestStrictHoldsWithoutMaximum: with strict estimates a request that names no
// maximum reserves the model's maximum output, so calls in flight together can
// never settle above the cap, however long the answers. (Reserving the 4,096
// default let four 6,000-token answers past a 20,000-token cap.)
func TestStrictHoldsWithoutMaximum(t *testing.T) {
	t.Parallel()
	const (
		limit   = 20000
		calls   = 4
		answers = 6000 // output tokens of each answer: more than the 4,096 default
	)
	rs := redistest.Start(t)
	// Every stream stops before its first event until all calls are decided,
	// so the admitted ones are all in flight together.
	gate := make(chan struct{})
	var held atomic.Int64
	up := newUpstream(t, sim.Options{OutputTokens: answers, OnEvent: func(r *http.Request, k int) {
		if k == 0 {
			held.Add(1)
			select {
			case <-gate:
			case <-r.Context().Done():
			}
		}
	}})
	g := startGateway(t, gatewayOptions{redis: rs.URL(), upstream: up, stateYAML: capState(limit, "strict")})

	var refused atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, calls)
	for range calls {
		c := g.client(t, devAKID, devSecret) // one each: the SDK's stream decoder is per client
		wg.Add(1)
		go func() {
			defer wg.Done()
			// No InferenceConfig: the request names no maximum output.
			out, err := c.ConverseStream(context.Background(), &bedrockruntime.ConverseStreamInput{ModelId: aws.String("capped"), Messages: userMessage("write at length")})
			if errCode(err) == "ServiceQuotaExceededException" {
				refused.Add(1)
				return
			}
			if err != nil {
				errs <- err
				return
			}
			s := out.GetStream()
			defer s.Close()
			for range s.Events() {
			}
			errs <- s.Err()
		}()
	}
	wait.For(t, "every call to be refused or held upstream", 20*time.Second, func() bool { return refused.Load()+held.Load() == calls })
	close(gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("admitted call: %v", err)
		}
	}
	st := capUsed(t, g, "capped", limit)
	t.Logf("%d admitted, %d refused; settled %d of %d", held.Load(), refused.Load(), st.Used, limit)
	if st.Used > limit {
		t.Errorf("strict: settled %d exceeds the cap %d", st.Used, limit)
	}
	if st.Used != up.sim.Totals().Total() || st.Reserved != 0 {
		t.Errorf("settled %d (reserved %d), the simulator reported %d", st.Used, st.Reserved, up.sim.Totals().Total())
	}
	if held.Load() == 0 || refused.Load() == 0 {
		t.Errorf("the cap should admit only part of the calls")
	}
}

// TestStrictNeedsAMaximum: with strict estimates, a model outside the table
// needs the request's own maximum; a bidirectional stream, which cannot name
// one up front, needs the operator's --model-max-output-file entry.
func TestStrictNeedsAMaximum(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	up := newUpstream(t, sim.Options{})
	st := baseState + `
entitlements:
  - {name: palmyra, model: writer.palmyra-x5-v1:0, limits: {monthly_tokens: 1000000, estimate: strict}, shares: [{target: o-testorg0001}]}
  - {name: sonic, model: amazon.nova-sonic-v1:0, limits: {monthly_tokens: 1000000, estimate: strict}, shares: [{target: o-testorg0001}]}
`
	maxFile := filepath.Join(t.TempDir(), "max-output.yaml")
	if err := os.WriteFile(maxFile, []byte("amazon.nova-sonic-v1:0: 1500\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	plain := startGateway(t, gatewayOptions{redis: rs.URL(), upstream: up, stateYAML: st})
	withFile := startGateway(t, gatewayOptions{redis: rs.URL(), upstream: up, args: []string{"--model-max-output-file", maxFile}})
	ctx := context.Background()

	c := plain.client(t, devAKID, devSecret)
	_, err := c.Converse(ctx, &bedrockruntime.ConverseInput{ModelId: aws.String("palmyra"), Messages: userMessage("hi")})
	if errCode(err) != "ValidationException" || !strings.Contains(err.Error(), "strict") || !strings.Contains(err.Error(), "inferenceConfig.maxTokens") {
		t.Errorf("Converse without a maximum on a model outside the table: %v, want a ValidationException naming inferenceConfig.maxTokens", err)
	}
	if _, err := converse(ctx, c, "palmyra", 50); err != nil {
		t.Errorf("Converse with a maximum: %v", err)
	}
	if n := len(up.sim.Requests()); n != 1 {
		t.Errorf("the simulator saw %d requests, want only the one with a maximum", n)
	}

	bidi := func(g *gateway) (*bedrockruntime.InvokeModelWithBidirectionalStreamOutput, error) {
		var p http.Protocols
		p.SetUnencryptedHTTP2(true)
		tr := &http.Transport{Protocols: &p}
		t.Cleanup(tr.CloseIdleConnections)
		c := g.client(t, devAKID, devSecret, func(o *bedrockruntime.Options) { o.HTTPClient = &http.Client{Transport: tr} })
		return c.InvokeModelWithBidirectionalStream(ctx, &bedrockruntime.InvokeModelWithBidirectionalStreamInput{ModelId: aws.String("sonic")})
	}
	// The SDK returns the duplex stream at once; the refusal ends it.
	refused, err := bidi(plain)
	if err == nil {
		s := refused.GetStream()
		if bidisdk.Next(t, s) == nil { // fails the test if the session runs instead
			err = s.Err()
		}
		s.Close()
	}
	if errCode(err) != "ValidationException" || !strings.Contains(err.Error(), "--model-max-output-file") {
		t.Errorf("bidirectional stream without a table entry: %v, want a ValidationException", err)
	}
	out, err := bidi(withFile)
	if err != nil {
		t.Fatalf("bidirectional stream with a table entry: %v", err)
	}
	s := out.GetStream()
	defer s.Close()
	if err := bidisdk.Send(ctx, s, bidisdk.TextInput("hello")); err != nil {
		t.Fatal(err)
	}
	bidisdk.Next(t, s)
	// While the session runs it holds the table's maximum.
	if held := capUsed(t, withFile, "sonic", 1000000).Reserved; held != 1500 {
		t.Errorf("the session reserved %d tokens, want the table's 1500", held)
	}
	if err := s.Writer.Close(); err != nil {
		t.Fatal(err)
	}
	for bidisdk.Next(t, s) != nil {
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
}
