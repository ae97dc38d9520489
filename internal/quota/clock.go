package quota

import "time"

// clock starts the timers the background loops (the settlement worker's
// probe, the reservation refresher) wait on, so tests can drive them without
// waiting on the wall clock. Redis time is never read from it.
type clock interface {
	// after returns a channel that receives once d has passed, and a stop
	// function that releases the timer.
	after(d time.Duration) (<-chan time.Time, func())
}

type wallClock struct{}

func (wallClock) after(d time.Duration) (<-chan time.Time, func()) {
	t := time.NewTimer(d)
	return t.C, func() { t.Stop() }
}
