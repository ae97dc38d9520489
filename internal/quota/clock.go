package quota

import "time"

// Clock is the replica's time as the limiter sees it: where it reads the
// local time and starts the timers of its background loops. Tests inject
// their own to move time without waiting on it, as envoyproxy/ratelimit
// injects its TimeSource. It never dates a decision: the scripts read Redis
// TIME (shifted only by Options.RedisTimeOffset), so caps and rate limits
// hold across replicas whose clocks disagree.
type Clock interface {
	// Now is the replica's clock. It proposes the candidate months the
	// reserve script picks from by Redis time, dates fail-open admissions
	// (Redis cannot), paces the local fail-open limiter and stamps usage
	// events.
	Now() time.Time
	// After returns a channel that receives once d has passed, and a stop
	// function that releases the timer. The settlement worker (probe,
	// backoff, shutdown retries) and the reservation refresher wait on it.
	After(d time.Duration) (<-chan time.Time, func())
}

// wallClock is the real clock, the default.
type wallClock struct{}

func (wallClock) Now() time.Time { return time.Now() }

func (wallClock) After(d time.Duration) (<-chan time.Time, func()) {
	t := time.NewTimer(d)
	return t.C, func() { t.Stop() }
}
