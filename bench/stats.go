package main

import (
	"math"
	"slices"
	"time"
)

// percentile returns the q-quantile (0 <= q <= 1) of sorted by the nearest-rank
// method: the smallest value with at least q of the samples at or below it.
// Nearest rank never invents a latency nobody observed, which matters at p99.9.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(q * float64(len(sorted))))
	if rank < 1 {
		rank = 1
	}
	if rank > len(sorted) {
		rank = len(sorted)
	}
	return sorted[rank-1]
}

// latencySummary is what one run reports about a set of latencies.
type latencySummary struct {
	N              int
	P50, P99, P999 time.Duration
	Max            time.Duration
}

// summarize sorts lat in place and summarises it.
func summarize(lat []time.Duration) latencySummary {
	slices.Sort(lat)
	s := latencySummary{N: len(lat)}
	if len(lat) == 0 {
		return s
	}
	s.P50 = percentile(lat, 0.50)
	s.P99 = percentile(lat, 0.99)
	s.P999 = percentile(lat, 0.999)
	s.Max = lat[len(lat)-1]
	return s
}

// spread is the median of a metric over repeated rounds, with its min and max:
// rounds are few (3 by default), so the median resists one noisy round and the
// range shows how noisy the machine was.
type spread struct {
	Med, Min, Max float64
	N             int
}

// aggregate returns the spread of vals, ignoring NaN (a round that could not
// measure the metric). The median of an even count is the mean of the middle two.
func aggregate(vals []float64) spread {
	v := make([]float64, 0, len(vals))
	for _, x := range vals {
		if !math.IsNaN(x) {
			v = append(v, x)
		}
	}
	if len(v) == 0 {
		return spread{Med: math.NaN(), Min: math.NaN(), Max: math.NaN()}
	}
	slices.Sort(v)
	s := spread{Min: v[0], Max: v[len(v)-1], N: len(v)}
	if m := len(v) / 2; len(v)%2 == 1 {
		s.Med = v[m]
	} else {
		s.Med = (v[m-1] + v[m]) / 2
	}
	return s
}
