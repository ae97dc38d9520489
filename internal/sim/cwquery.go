package sim

import (
	"encoding/base64"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/smithy-go/encoding/cbor"
)

// cwListPage is ListMetrics' page size (CloudWatch's).
const cwListPage = 500

// point is one datapoint of a GetMetricData result.
type point struct {
	t time.Time
	v float64
}

// getMetricData answers MetricStat queries: the stored per-minute statistics
// aggregated into periods counted from StartTime, one page of at most
// MaxDatapoints datapoints across all queries at a time.
func (m *metricStore) getMetricData(region string, in *getMetricDataInput) (cbor.Map, error) {
	results := make([][]point, len(in.queries))
	m.mu.Lock()
	for i, q := range in.queries {
		if !q.returnData {
			continue
		}
		_, dk := dimsKey(q.dims)
		sr := m.series[seriesKey{region, q.namespace, q.name, dk}]
		if sr == nil || q.unit != "" && sr.unit != "" && q.unit != sr.unit {
			continue
		}
		buckets := map[int64]*statSet{}
		start, end := in.start.Unix(), in.end.Unix()
		for minute, st := range sr.points {
			if minute < start || minute >= end {
				continue
			}
			b := start + (minute-start)/q.period*q.period
			x := buckets[b]
			if x == nil {
				x = &statSet{}
				buckets[b] = x
			}
			x.add(*st)
		}
		pts := make([]point, 0, len(buckets))
		for b, st := range buckets {
			pts = append(pts, point{time.Unix(b, 0).UTC(), statValue(q.stat, *st)})
		}
		slices.SortFunc(pts, func(a, b point) int {
			if in.ascending {
				return a.t.Compare(b.t)
			}
			return b.t.Compare(a.t)
		})
		results[i] = pts
	}
	m.mu.Unlock()

	total := 0
	for _, r := range results {
		total += len(r)
	}
	scope := cwTokenScope(in)
	offset := 0
	if in.nextToken != "" {
		var err error
		if offset, err = decodeCWToken(in.nextToken, scope); err != nil || offset > total {
			return nil, &cwError{400, "InvalidNextToken", "InvalidNextToken", "The service found NextToken invalid."}
		}
	}
	limit := offset + in.maxDatapoints
	out := cbor.List{}
	pos := 0 // index of the current query's first point in the flattened list
	for i, q := range in.queries {
		if !q.returnData {
			continue
		}
		pts := results[i]
		lo := min(max(offset-pos, 0), len(pts))
		hi := min(max(limit-pos, 0), len(pts))
		pos += len(pts)
		ts, vs := cbor.List{}, cbor.List{}
		for _, p := range pts[lo:hi] {
			ts = append(ts, &cbor.Tag{ID: 1, Value: cbor.Float64(float64(p.t.Unix()))})
			vs = append(vs, cbor.Float64(p.v))
		}
		status := "Complete"
		if hi < len(pts) {
			status = "PartialData"
		}
		label := q.label
		if label == "" {
			label = q.name
		}
		out = append(out, cbor.Map{
			"Id": cbor.String(q.id), "Label": cbor.String(label),
			"Timestamps": ts, "Values": vs, "StatusCode": cbor.String(status),
		})
	}
	res := cbor.Map{"MetricDataResults": out}
	if limit < total {
		res["NextToken"] = cbor.String(encodeCWToken(scope, limit))
	}
	return res, nil
}

func statValue(stat string, st statSet) float64 {
	switch stat {
	case "SampleCount":
		return st.count
	case "Average":
		return st.sum / st.count
	case "Minimum":
		return st.min
	case "Maximum":
		return st.max
	}
	return st.sum
}

// listMetrics lists the region's metrics matching the filters, sorted by
// namespace, name and dimensions, 500 a page.
func (m *metricStore) listMetrics(region string, in *listMetricsInput) (cbor.Map, error) {
	type found struct {
		ns, name, dims string
		d              []Dimension
	}
	var all []found
	recent := time.Now().Add(-3 * time.Hour).Unix()
	m.mu.Lock()
	for k, sr := range m.series {
		if k.region != region || in.namespace != "" && k.namespace != in.namespace || in.name != "" && k.name != in.name {
			continue
		}
		if !matchDims(sr.dims, in.dims) {
			continue
		}
		if in.recentlyActive && !activeSince(sr, recent) {
			continue
		}
		all = append(all, found{k.namespace, k.name, k.dims, slices.Clone(sr.dims)})
	}
	m.mu.Unlock()
	slices.SortFunc(all, func(a, b found) int {
		return strings.Compare(a.ns+"\x00"+a.name+"\x00"+a.dims, b.ns+"\x00"+b.name+"\x00"+b.dims)
	})
	scope := fmt.Sprintf("list\x00%s\x00%s\x00%s\x00%v\x00%v", region, in.namespace, in.name, in.dims, in.recentlyActive)
	offset := 0
	if in.nextToken != "" {
		var err error
		if offset, err = decodeCWToken(in.nextToken, scope); err != nil || offset > len(all) {
			return nil, &cwError{400, "InvalidNextToken", "InvalidNextToken", "The service found NextToken invalid."}
		}
	}
	end := min(offset+cwListPage, len(all))
	metrics := cbor.List{}
	for _, f := range all[offset:end] {
		dims := cbor.List{}
		for _, d := range f.d {
			dims = append(dims, cbor.Map{"Name": cbor.String(d.Name), "Value": cbor.String(d.Value)})
		}
		metrics = append(metrics, cbor.Map{"Namespace": cbor.String(f.ns), "MetricName": cbor.String(f.name), "Dimensions": dims})
	}
	res := cbor.Map{"Metrics": metrics}
	if end < len(all) {
		res["NextToken"] = cbor.String(encodeCWToken(scope, end))
	}
	return res, nil
}

// matchDims: every filter names a dimension of the metric (with its value,
// when the filter gives one).
func matchDims(dims []Dimension, filters []dimensionFilter) bool {
	for _, f := range filters {
		ok := slices.ContainsFunc(dims, func(d Dimension) bool {
			return d.Name == f.name && (f.value == nil || d.Value == *f.value)
		})
		if !ok {
			return false
		}
	}
	return true
}

// activeSince: sr has a datapoint in the minute of t or later.
func activeSince(sr *series, t int64) bool {
	for minute := range sr.points {
		if minute >= t-60 {
			return true
		}
	}
	return false
}

// cwTokenScope identifies a GetMetricData request apart from its NextToken,
// so a token is only accepted by the request that produced it.
func cwTokenScope(in *getMetricDataInput) string {
	var b strings.Builder
	fmt.Fprintf(&b, "get\x00%d\x00%d\x00%v\x00%d", in.start.Unix(), in.end.Unix(), in.ascending, in.maxDatapoints)
	for _, q := range in.queries {
		fmt.Fprintf(&b, "\x00%s|%v|%s|%s|%v|%d|%s|%s", q.id, q.returnData, q.namespace, q.name, q.dims, q.period, q.stat, q.unit)
	}
	return b.String()
}

func encodeCWToken(scope string, offset int) string {
	h := fnv.New64a()
	h.Write([]byte(scope))
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.Itoa(offset) + ":" + strconv.FormatUint(h.Sum64(), 16)))
}

func decodeCWToken(tok, scope string) (int, error) {
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return 0, err
	}
	off, sum, ok := strings.Cut(string(raw), ":")
	h := fnv.New64a()
	h.Write([]byte(scope))
	if !ok || sum != strconv.FormatUint(h.Sum64(), 16) {
		return 0, fmt.Errorf("token of another request")
	}
	n, err := strconv.Atoi(off)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("bad offset")
	}
	return n, nil
}
