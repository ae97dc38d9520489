package store

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bedrock-gateway/gateway/internal/state"
	"github.com/bedrock-gateway/gateway/internal/testutil/redistest"
	"github.com/bedrock-gateway/gateway/internal/testutil/wait"
)

// waitTimeout bounds every wait for a condition; it is a deadline against
// hangs, not a performance threshold.
const waitTimeout = 10 * time.Second

// recorder collects the versions a Watch delivers.
type recorder struct {
	mu       sync.Mutex
	versions []uint64
	at       []time.Time
	changed  chan struct{}
}

func newRecorder() *recorder { return &recorder{changed: make(chan struct{}, 1)} }

func (r *recorder) onChange(v uint64) {
	r.mu.Lock()
	r.versions = append(r.versions, v)
	r.at = append(r.at, time.Now())
	r.mu.Unlock()
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

// waitFor blocks until version v was delivered and returns when it was.
func (r *recorder) waitFor(t testing.TB, v uint64) time.Time {
	t.Helper()
	deadline := time.After(waitTimeout)
	for {
		r.mu.Lock()
		if i := slices.Index(r.versions, v); i >= 0 {
			at := r.at[i]
			r.mu.Unlock()
			return at
		}
		got := slices.Clone(r.versions)
		r.mu.Unlock()
		select {
		case <-r.changed:
		case <-deadline:
			t.Fatalf("version %d not delivered within %v; got %v", v, waitTimeout, got)
		}
	}
}

func (r *recorder) snapshot() []uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.versions)
}

// startWatch runs s.Watch until the test ends and checks that it returns then.
func startWatch(t *testing.T, s *Store, onChange func(uint64)) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Watch(ctx, onChange)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(waitTimeout):
			t.Error("Watch did not return after its context ended")
		}
	})
}

// waitSubscribed waits until n clients subscribe to the change channel, so a
// test's update cannot race the subscription.
func waitSubscribed(t testing.TB, c redis.UniversalClient, s *Store, n int64) {
	t.Helper()
	wait.Until(t, fmt.Sprintf("%d subscribers on %s", n, s.channel), waitTimeout, func() error {
		counts, err := c.PubSubNumSub(context.Background(), s.channel).Result()
		if err != nil {
			return err
		}
		if counts[s.channel] < n {
			return fmt.Errorf("%d subscribed", counts[s.channel])
		}
		return nil
	})
}

func touch(i int) func(st *state.State) error {
	return func(st *state.State) error {
		st.Entitlements = []state.Entitlement{sampleEntitlement("e")}
		st.Entitlements[0].Limits.MonthlyTokens = int64(i + 1)
		return nil
	}
}

func TestWatchPropagation(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	testWatchPropagation(t, srv.Client(t), srv.Client(t), "gw")
}

// testWatchPropagation: a change written through one replica's client reaches a
// Watch on another's by pub/sub alone (the poll is effectively off).
func testWatchPropagation(t *testing.T, writerClient, readerClient redis.UniversalClient, prefix string) {
	ctx := t.Context()
	writer := newStore(t, writerClient, Options{Prefix: prefix})
	reader := newStore(t, readerClient, Options{Prefix: prefix, PollInterval: time.Hour})
	v0, err := writer.Update(ctx, "test", "edit", touch(-1))
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	startWatch(t, reader, rec.onChange)
	rec.waitFor(t, v0) // the call at start
	waitSubscribed(t, writerClient, reader, 1)

	var lat []time.Duration
	for i := range 5 {
		start := time.Now()
		v, err := writer.Update(ctx, "test", "edit", touch(i))
		if err != nil {
			t.Fatal(err)
		}
		lat = append(lat, rec.waitFor(t, v).Sub(start))
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	t.Logf("propagation (update start to onChange on the other replica): median %v, max %v", lat[len(lat)/2], lat[len(lat)-1])
}

func TestWatchPollFallback(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	ctx := t.Context()
	writer := newStore(t, srv.Client(t), Options{})
	const poll = 50 * time.Millisecond
	reader := newStore(t, srv.Client(t), Options{PollInterval: poll})
	reader.channel += ":elsewhere" // never receives a message
	rec := newRecorder()
	startWatch(t, reader, rec.onChange)
	rec.waitFor(t, 0)
	start := time.Now()
	v, err := writer.Update(ctx, "test", "edit", touch(0))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("delivered by poll after %v (PollInterval %v)", rec.waitFor(t, v).Sub(start), poll)
}

func TestWatchSurvivesPubSubKill(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	ctx := t.Context()
	admin := srv.Client(t)
	writer := newStore(t, admin, Options{})
	reader := newStore(t, srv.Client(t), Options{PollInterval: time.Hour})
	rec := newRecorder()
	startWatch(t, reader, rec.onChange)
	rec.waitFor(t, 0)
	waitSubscribed(t, admin, reader, 1)
	for i := range 2 {
		if err := admin.Do(ctx, "CLIENT", "KILL", "TYPE", "pubsub").Err(); err != nil {
			t.Fatal(err)
		}
		// Written while the subscription is down or coming back: the
		// resubscription itself triggers a check, so nothing waits for a poll.
		v, err := writer.Update(ctx, "test", "edit", touch(i))
		if err != nil {
			t.Fatal(err)
		}
		rec.waitFor(t, v)
		waitSubscribed(t, admin, reader, 1)
	}
}

func TestWatchCoalescesAndSerializes(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	ctx := t.Context()
	writer := newStore(t, srv.Client(t), Options{})
	reader := newStore(t, srv.Client(t), Options{PollInterval: time.Hour})
	v0, err := writer.Update(ctx, "test", "edit", touch(-1))
	if err != nil {
		t.Fatal(err)
	}
	var (
		inside, maxInside atomic.Int32
		entered           = make(chan uint64, 10)
		release           = make(chan struct{})
		rec               = newRecorder()
	)
	startWatch(t, reader, func(v uint64) {
		n := inside.Add(1)
		defer inside.Add(-1)
		if n > maxInside.Load() {
			maxInside.Store(n)
		}
		if v == v0+1 {
			entered <- v
			<-release // a slow reload
		}
		rec.onChange(v)
	})
	rec.waitFor(t, v0)
	waitSubscribed(t, srv.Client(t), reader, 1)
	if _, err := writer.Update(ctx, "test", "edit", touch(0)); err != nil {
		t.Fatal(err)
	}
	<-entered
	var last uint64
	for i := range 5 {
		if last, err = writer.Update(ctx, "test", "edit", touch(i+1)); err != nil {
			t.Fatal(err)
		}
	}
	close(release)
	rec.waitFor(t, last)
	if got, want := rec.snapshot(), []uint64{v0, v0 + 1, last}; !slices.Equal(got, want) {
		t.Fatalf("delivered %v, want %v (changes during a slow call coalesced)", got, want)
	}
	if maxInside.Load() != 1 {
		t.Fatalf("%d concurrent onChange calls", maxInside.Load())
	}
}

func TestWatchRedisDown(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	ctx := t.Context()
	writer := newStore(t, srv.Client(t), Options{})
	reader := newStore(t, srv.Client(t), Options{PollInterval: 20 * time.Millisecond})
	rec := newRecorder()
	startWatch(t, reader, rec.onChange)
	rec.waitFor(t, 0)
	srv.Restart() // an empty server again: the version is back to 0
	v, err := writer.Update(ctx, "test", "edit", touch(0))
	if err != nil {
		t.Fatal(err)
	}
	if v != 1 {
		t.Fatalf("version after restart %d", v)
	}
	rec.waitFor(t, 1)
}
