package server

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/bedrock-gateway/gateway/internal/sim"
	"github.com/bedrock-gateway/gateway/internal/testutil/redistest"
)

// restartState shares one entitlement with all three member teams.
const restartState = baseState + `
entitlements:
  - {name: support, model: "` + haiku + `", shares: [{target: ou-ab12-platform}, {target: "333333333333"}, {target: "444444444444"}]}
`

// lockedBuffer collects log output written from several goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestRestartKeepsRevocations: an operator revokes a credential and removes a
// share, then the replica restarts with the same --bootstrap file (as every
// pod restart does). Both stay gone: the bootstrap seeds only an empty store,
// says so once, and the revoked key cannot come back by apply, nor by a
// state written straight into Redis.
func TestRestartKeepsRevocations(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rs := redistest.Start(t)
	rdb := rs.Client(t)
	up := newUpstream(t, sim.Options{})
	a := startGateway(t, gatewayOptions{redis: rs.URL(), upstream: up, stateYAML: restartState})
	for _, k := range [][2]string{{devAKID, devSecret}, {dsAKID, dsSecret}, {mktAKID, mktSecret}} {
		if _, err := converse(ctx, a.client(t, k[0], k[1]), "support", 4); err != nil {
			t.Fatalf("%s before the changes: %v", k[0], err)
		}
	}
	dsStored, err := rdb.HGet(ctx, "gw:{state}:credentials", dsAKID).Result()
	if err != nil {
		t.Fatal(err)
	}
	if code := a.admin(t, "DELETE", "/admin/v1/credentials/"+dsAKID, nil, nil); code != http.StatusOK {
		t.Fatalf("revoke: %d", code)
	}
	if code := a.admin(t, "DELETE", "/admin/v1/entitlements/support/shares/444444444444", nil, nil); code != http.StatusOK {
		t.Fatalf("remove share: %d", code)
	}
	a.stop()

	logs := &lockedBuffer{}
	b := startGateway(t, gatewayOptions{redis: rs.URL(), upstream: up, stateYAML: restartState, logs: logs})
	check := func(when string) {
		t.Helper()
		if _, err := converse(ctx, b.client(t, devAKID, devSecret), "support", 4); err != nil {
			t.Errorf("%s: untouched credential and share: %v", when, err)
		}
		if _, err := converse(ctx, b.client(t, dsAKID, dsSecret), "support", 4); errCode(err) != "UnrecognizedClientException" {
			t.Errorf("%s: revoked credential: got %q, want UnrecognizedClientException", when, errCode(err))
		}
		if _, err := converse(ctx, b.client(t, mktAKID, mktSecret), "support", 4); errCode(err) != "AccessDeniedException" {
			t.Errorf("%s: removed share: got %q, want AccessDeniedException", when, errCode(err))
		}
	}
	check("after the restart")
	out := logs.String()
	if n := strings.Count(out, "--bootstrap applied nothing"); n != 1 {
		t.Errorf("%d bootstrap warnings, want 1:\n%s", n, out)
	}
	// The file differs from the store in the credential and the share, and
	// applying it would be refused because of the revoked key.
	for _, want := range []string{"differences=2", "store_id=", "apply_refused=", "access key " + dsAKID + " was revoked"} {
		if !strings.Contains(out, want) {
			t.Errorf("bootstrap warning lacks %q:\n%s", want, out)
		}
	}

	// `gateway apply` of the same file is refused, naming the key.
	req, _ := http.NewRequest("POST", "http://"+b.OpsAddr()+"/admin/v1/apply", strings.NewReader(restartState))
	req.Header.Set("Authorization", "Bearer "+adminToken)
	req.Header.Set("Content-Type", "application/yaml")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "access key "+dsAKID+" was revoked") {
		t.Errorf("apply re-adding the revoked key: %d %s", resp.StatusCode, body)
	}

	// A state written around the admin API brings the credential back in
	// Redis; the tombstone still keeps it out.
	if err := rdb.HSet(ctx, "gw:{state}:credentials", dsAKID, dsStored).Err(); err != nil {
		t.Fatal(err)
	}
	v, err := rdb.Incr(ctx, "gw:{state}:version").Result()
	if err != nil {
		t.Fatal(err)
	}
	if err := rdb.Publish(ctx, "gw:{state}:changes", v).Err(); err != nil {
		t.Fatal(err)
	}
	if err := b.syncer.WaitVersion(ctx, uint64(v)); err != nil {
		t.Fatal(err)
	}
	if st := b.Current().State(); len(st.Credentials) != 3 {
		t.Fatalf("the direct write did not reach the snapshot: %d credentials", len(st.Credentials))
	}
	check("after a direct write")
}

// TestBootstrapNeverSeedsAWipedStore: a store whose marker says it was wiped
// (written back by a replica that saw it vanish) is not seeded again, even
// though it is empty: seeding would bring back every credential revoked before
// the wipe.
func TestBootstrapNeverSeedsAWipedStore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rs := redistest.Start(t)
	marker := `{"id":"0123456789abcdef0123456789abcdef","initialized_at":"2026-01-01T00:00:00Z","wiped":true}`
	if err := rs.Client(t).Set(ctx, "gw:{state}:marker", marker, 0).Err(); err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	g := startGateway(t, gatewayOptions{redis: rs.URL(), upstream: newUpstream(t, sim.Options{}), stateYAML: restartState, logs: logs})
	if _, err := converse(ctx, g.client(t, devAKID, devSecret), "support", 4); errCode(err) != "UnrecognizedClientException" {
		t.Fatalf("a credential of the bootstrap file: got %q, want UnrecognizedClientException", errCode(err))
	}
	for _, want := range []string{"--bootstrap applied nothing", "store_id=0123456789abcdef0123456789abcdef", "wiped=true"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("warning lacks %q:\n%s", want, logs.String())
		}
	}
}
