package server

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bedrock-gateway/gateway/internal/sim"
	"github.com/bedrock-gateway/gateway/internal/testutil/redistest"
	"github.com/bedrock-gateway/gateway/internal/testutil/wait"
)

const revokeState = baseState + `
entitlements:
  - {name: support, model: "` + haiku + `", shares: [{target: ou-ab12-platform}]}
`

// propagationBound is the documented promise: a revoke is in force on every
// replica within one second.
const propagationBound = time.Second

// TestRevocationUnderLoad runs two replicas on one Redis with clients calling
// both continuously, revokes the share through replica A's admin API, and
// checks that no call that started after the bound was admitted anywhere. It
// does so with pub/sub working and with it cut (the version poll must cover).
//
// It does not run in parallel with the other tests: it asserts the product's
// one-second promise, which a machine saturated by other tests' load could
// break for reasons that have nothing to do with the gateway.
func TestRevocationUnderLoad(t *testing.T) {
	for _, cutPubSub := range []bool{false, true} {
		t.Run(fmt.Sprintf("pubsub_cut=%v", cutPubSub), func(t *testing.T) {
			t.Parallel()
			rs := redistest.Start(t)
			up := newUpstream(t, sim.Options{})
			bURL := rs.URL()
			if cutPubSub {
				// Replica B may not subscribe at all: only its periodic version
				// check can tell it about the revoke.
				if err := rs.Client(t).Do(context.Background(), "ACL", "SETUSER", "nopubsub", "on", ">pw", "~*", "&*", "+@all",
					"-subscribe", "-psubscribe", "-ssubscribe").Err(); err != nil {
					t.Fatal(err)
				}
				bURL = "redis://nopubsub:pw@" + rs.Addr
			}
			a := startGateway(t, gatewayOptions{redis: rs.URL(), upstream: up, stateYAML: revokeState})
			b := startGateway(t, gatewayOptions{redis: bURL, upstream: up, stateYAML: revokeState})

			type result struct {
				replica string
				start   time.Time
				allowed bool
			}
			var (
				mu      sync.Mutex
				results []result
				stop    atomic.Bool
				wg      sync.WaitGroup
			)
			for _, g := range []*gateway{a, b} {
				name := "A"
				if g == b {
					name = "B"
				}
				c := g.client(t, devAKID, devSecret)
				for w := 0; w < 4; w++ {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for !stop.Load() {
							start := time.Now()
							_, err := converse(context.Background(), c, "support", 4)
							mu.Lock()
							results = append(results, result{name, start, err == nil})
							mu.Unlock()
						}
					}()
				}
			}
			wait.For(t, "traffic on both replicas", 10*time.Second, func() bool {
				mu.Lock()
				defer mu.Unlock()
				seen := map[string]bool{}
				for _, r := range results {
					if r.allowed {
						seen[r.replica] = true
					}
				}
				return seen["A"] && seen["B"]
			})
			if code := a.admin(t, "DELETE", "/admin/v1/entitlements/support/shares/ou-ab12-platform", nil, nil); code != 200 {
				t.Fatalf("revoke: %d", code)
			}
			revoked := time.Now()
			wait.For(t, "denials on both replicas", 10*time.Second, func() bool {
				mu.Lock()
				defer mu.Unlock()
				seen := map[string]bool{}
				for _, r := range results {
					if !r.allowed && r.start.After(revoked) {
						seen[r.replica] = true
					}
				}
				return seen["A"] && seen["B"]
			})
			time.Sleep(propagationBound) // keep the load on past the bound, to check it holds after
			stop.Store(true)
			wg.Wait()

			// Replica A applied the change before its admin call returned.
			lastAllowed := map[string]time.Time{}
			firstDenied := map[string]time.Time{}
			for _, r := range results {
				if r.allowed && r.start.After(lastAllowed[r.replica]) {
					lastAllowed[r.replica] = r.start
				}
				if !r.allowed && (firstDenied[r.replica].IsZero() || r.start.Before(firstDenied[r.replica])) {
					firstDenied[r.replica] = r.start
				}
			}
			for _, name := range []string{"A", "B"} {
				t.Logf("replica %s: first denied call started %v after the revoke returned", name, firstDenied[name].Sub(revoked).Round(time.Microsecond))
			}
			var lags []string
			for _, name := range []string{"A", "B"} {
				lag := lastAllowed[name].Sub(revoked)
				lags = append(lags, fmt.Sprintf("%s: last admitted call started %v after the revoke returned", name, lag.Round(time.Microsecond)))
				if lag > propagationBound {
					t.Errorf("replica %s admitted a call %v after the revoke (bound %v)", name, lag, propagationBound)
				}
			}
			if lastAllowed["A"].After(revoked) {
				t.Errorf("replica A (where the revoke was made) admitted a call after the revoke returned")
			}
			sort.Strings(lags)
			t.Log(lags)
		})
	}
}
