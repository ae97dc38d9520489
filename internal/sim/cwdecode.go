package sim

import (
	"fmt"
	"math"
	"regexp"
	"strings"
	"time"

	"github.com/aws/smithy-go/encoding/cbor"
)

// Decoding of the CloudWatch inputs the simulator serves, from RPC v2 CBOR,
// with CloudWatch's validation (limits as documented in the API reference).

type putMetricDataInput struct {
	namespace string
	data      []datum
}

type datum struct {
	name  string
	dims  []Dimension
	unit  string
	t     time.Time
	stats statSet
}

type metricStatQuery struct {
	id, label  string
	returnData bool
	namespace  string
	name       string
	dims       []Dimension
	period     int64
	stat       string
	unit       string
}

type getMetricDataInput struct {
	queries       []metricStatQuery
	start, end    time.Time
	nextToken     string
	ascending     bool
	maxDatapoints int
}

type listMetricsInput struct {
	namespace, name string
	dims            []dimensionFilter
	nextToken       string
	recentlyActive  bool
}

type dimensionFilter struct {
	name  string
	value *string
}

// CloudWatch's limits.
const (
	cwMaxMetricData    = 1000
	cwMaxDimensions    = 30
	cwMaxValues        = 150
	cwMaxQueries       = 500
	cwDefaultDatapoint = 100800
)

var (
	queryIDPattern  = regexp.MustCompile(`^[a-z][a-zA-Z0-9_]*$`)
	cwStats         = []string{"Sum", "SampleCount", "Average", "Minimum", "Maximum"}
	errNotCBORInput = cwInvalid("The request body is not a CBOR map.")
)

// decodeCloudWatchInput decodes and validates the input of op (the fuzzed
// entry point). Its errors are *cwError.
func decodeCloudWatchInput(op string, body []byte) (any, error) {
	m := cbor.Map{}
	if len(body) > 0 {
		v, err := cbor.Decode(body)
		if err != nil {
			return nil, cwInvalid("The request body is not valid CBOR: " + err.Error())
		}
		var ok bool
		if m, ok = v.(cbor.Map); !ok {
			return nil, errNotCBORInput
		}
	}
	d := cborReader{}
	var in any
	switch op {
	case "PutMetricData":
		in = d.putMetricData(m)
	case "GetMetricData":
		in = d.getMetricData(m)
	case "ListMetrics":
		in = d.listMetrics(m)
	default:
		return nil, &cwError{404, "UnknownOperationException", "InvalidAction", "The simulator does not serve operation " + op + "."}
	}
	if d.err != nil {
		return nil, d.err
	}
	return in, nil
}

// cborReader reads members, keeping the first error.
type cborReader struct{ err error }

func (d *cborReader) fail(e *cwError) {
	if d.err == nil {
		d.err = e
	}
}

func (d *cborReader) str(m cbor.Map, k, path string) string {
	v, ok := m[k]
	if !ok || isNil(v) {
		return ""
	}
	s, ok := v.(cbor.String)
	if !ok {
		d.fail(cwInvalid(path + k + " must be a string."))
		return ""
	}
	return string(s)
}

func (d *cborReader) num(m cbor.Map, k, path string) (float64, bool) {
	v, ok := m[k]
	if !ok || isNil(v) {
		return 0, false
	}
	f, err := cbor.AsFloat64(v)
	if err != nil {
		if i, ierr := cbor.AsInt64(v); ierr == nil {
			return float64(i), true
		}
		d.fail(cwInvalid(path + k + " must be a number."))
		return 0, false
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		d.fail(cwInvalid(path + k + " must be a finite number."))
		return 0, false
	}
	return f, true
}

func (d *cborReader) integer(m cbor.Map, k, path string) (int64, bool) {
	v, ok := m[k]
	if !ok || isNil(v) {
		return 0, false
	}
	i, err := cbor.AsInt64(v)
	if err != nil {
		d.fail(cwInvalid(path + k + " must be an integer."))
		return 0, false
	}
	return i, true
}

func (d *cborReader) boolean(m cbor.Map, k, path string) (bool, bool) {
	v, ok := m[k]
	if !ok || isNil(v) {
		return false, false
	}
	b, ok := v.(cbor.Bool)
	if !ok {
		d.fail(cwInvalid(path + k + " must be a boolean."))
		return false, false
	}
	return bool(b), true
}

func (d *cborReader) timestamp(m cbor.Map, k, path string) (time.Time, bool) {
	v, ok := m[k]
	if !ok || isNil(v) {
		return time.Time{}, false
	}
	t, err := cbor.AsTime(v)
	if err != nil {
		d.fail(cwInvalid(path + k + " must be a timestamp."))
		return time.Time{}, false
	}
	return t, true
}

func (d *cborReader) list(m cbor.Map, k, path string) cbor.List {
	v, ok := m[k]
	if !ok || isNil(v) {
		return nil
	}
	l, ok := v.(cbor.List)
	if !ok {
		d.fail(cwInvalid(path + k + " must be a list."))
		return nil
	}
	return l
}

func (d *cborReader) object(v cbor.Value, path string) cbor.Map {
	o, ok := v.(cbor.Map)
	if !ok {
		d.fail(cwInvalid(path + " must be a structure."))
		return cbor.Map{}
	}
	return o
}

func (d *cborReader) member(m cbor.Map, k, path string) (cbor.Map, bool) {
	v, ok := m[k]
	if !ok || isNil(v) {
		return nil, false
	}
	return d.object(v, path+k), true
}

func isNil(v cbor.Value) bool {
	switch v.(type) {
	case *cbor.Nil, *cbor.Undefined:
		return true
	}
	return v == nil
}

func (d *cborReader) dimensions(m cbor.Map, path string) []Dimension {
	l := d.list(m, "Dimensions", path)
	if len(l) > cwMaxDimensions {
		d.fail(cwInvalid(fmt.Sprintf("%sDimensions: at most %d dimensions.", path, cwMaxDimensions)))
		return nil
	}
	out := make([]Dimension, 0, len(l))
	seen := map[string]bool{}
	for i, v := range l {
		p := fmt.Sprintf("%sDimensions[%d].", path, i)
		o := d.object(v, p[:len(p)-1])
		x := Dimension{Name: d.str(o, "Name", p), Value: d.str(o, "Value", p)}
		if x.Name == "" || len(x.Name) > 255 || x.Value == "" || len(x.Value) > 1024 {
			d.fail(cwInvalid(p + "Name (1-255 characters) and Value (1-1024 characters) are required."))
			return nil
		}
		if seen[x.Name] {
			d.fail(cwInvalid(p + "Name " + x.Name + " is repeated."))
			return nil
		}
		seen[x.Name] = true
		out = append(out, x)
	}
	return out
}

func (d *cborReader) putMetricData(m cbor.Map) *putMetricDataInput {
	in := &putMetricDataInput{namespace: d.str(m, "Namespace", "")}
	switch {
	case in.namespace == "":
		d.fail(cwMissing("The parameter Namespace is required."))
	case len(in.namespace) > 255:
		d.fail(cwInvalid("Namespace is longer than 255 characters."))
	case strings.HasPrefix(in.namespace, "AWS/"):
		d.fail(cwInvalid("The value AWS/ for parameter Namespace is invalid."))
	}
	l := d.list(m, "MetricData", "")
	if len(l) == 0 || len(l) > cwMaxMetricData {
		d.fail(cwInvalid(fmt.Sprintf("MetricData must hold 1 to %d items.", cwMaxMetricData)))
		return in
	}
	now := time.Now()
	for i, v := range l {
		p := fmt.Sprintf("MetricData[%d]", i)
		o := d.object(v, p)
		p += "."
		x := datum{name: d.str(o, "MetricName", p), dims: d.dimensions(o, p), unit: d.str(o, "Unit", p)}
		if x.name == "" || len(x.name) > 255 {
			d.fail(cwMissing("The parameter " + p + "MetricName is required (1-255 characters)."))
			return in
		}
		t, ok := d.timestamp(o, "Timestamp", p)
		if !ok {
			t = now
		}
		if t.Before(now.Add(-14*24*time.Hour)) || t.After(now.Add(2*time.Hour)) {
			d.fail(cwInvalid("The parameter " + p + "Timestamp must be within the last two weeks and at most two hours ahead."))
			return in
		}
		x.t = t
		value, hasValue := d.num(o, "Value", p)
		sv, hasStats := d.member(o, "StatisticValues", p)
		values := d.list(o, "Values", p)
		counts := d.list(o, "Counts", p)
		kinds := 0
		for _, b := range []bool{hasValue, hasStats, len(values) > 0} {
			if b {
				kinds++
			}
		}
		if kinds != 1 {
			d.fail(cwCombination("The parameters " + p + "Value, " + p + "StatisticValues and " + p + "Values are mutually exclusive and one is required."))
			return in
		}
		switch {
		case hasValue:
			x.stats = statSet{1, value, value, value}
		case hasStats:
			sp := p + "StatisticValues."
			n, ok1 := d.num(sv, "SampleCount", sp)
			sum, ok2 := d.num(sv, "Sum", sp)
			lo, ok3 := d.num(sv, "Minimum", sp)
			hi, ok4 := d.num(sv, "Maximum", sp)
			if !ok1 || !ok2 || !ok3 || !ok4 {
				d.fail(cwMissing("The parameters " + sp + "SampleCount, Sum, Minimum and Maximum are required."))
				return in
			}
			if n <= 0 || lo > hi {
				d.fail(cwInvalid("The parameter " + sp + "SampleCount must be positive and Minimum at most Maximum."))
				return in
			}
			x.stats = statSet{n, sum, lo, hi}
		default:
			if len(values) > cwMaxValues || len(counts) != 0 && len(counts) != len(values) {
				d.fail(cwInvalid(fmt.Sprintf("The parameter %sValues holds at most %d values, and Counts as many when given.", p, cwMaxValues)))
				return in
			}
			for j, vv := range values {
				vp := fmt.Sprintf("%sValues[%d]", p, j)
				f, ok := d.num(cbor.Map{"v": vv}, "v", vp)
				c := 1.0
				if len(counts) > 0 {
					c, ok = d.num(cbor.Map{"c": counts[j]}, "c", fmt.Sprintf("%sCounts[%d]", p, j))
				}
				if !ok || c <= 0 {
					d.fail(cwInvalid("The parameter " + vp + " and its count must be numbers, the count positive."))
					return in
				}
				x.stats.add(statSet{c, f * c, f, f})
			}
		}
		if d.err != nil {
			return in
		}
		in.data = append(in.data, x)
	}
	return in
}

func (d *cborReader) getMetricData(m cbor.Map) *getMetricDataInput {
	in := &getMetricDataInput{nextToken: d.str(m, "NextToken", ""), maxDatapoints: cwDefaultDatapoint}
	var okS, okE bool
	in.start, okS = d.timestamp(m, "StartTime", "")
	in.end, okE = d.timestamp(m, "EndTime", "")
	if d.err == nil && (!okS || !okE) {
		d.fail(cwMissing("The parameters StartTime and EndTime are required."))
	}
	if d.err == nil && !in.start.Before(in.end) {
		d.fail(cwInvalid("The parameter StartTime must be before EndTime."))
	}
	switch scan := d.str(m, "ScanBy", ""); scan {
	case "", "TimestampDescending":
	case "TimestampAscending":
		in.ascending = true
	default:
		d.fail(cwInvalid("The parameter ScanBy must be TimestampDescending or TimestampAscending."))
	}
	if n, ok := d.integer(m, "MaxDatapoints", ""); ok {
		if n < 1 || n > cwDefaultDatapoint {
			d.fail(cwInvalid(fmt.Sprintf("The parameter MaxDatapoints must be from 1 to %d.", cwDefaultDatapoint)))
		}
		in.maxDatapoints = int(n)
	}
	l := d.list(m, "MetricDataQueries", "")
	if len(l) == 0 || len(l) > cwMaxQueries {
		d.fail(cwInvalid(fmt.Sprintf("MetricDataQueries must hold 1 to %d queries.", cwMaxQueries)))
		return in
	}
	ids := map[string]bool{}
	for i, v := range l {
		p := fmt.Sprintf("MetricDataQueries[%d]", i)
		o := d.object(v, p)
		p += "."
		q := metricStatQuery{id: d.str(o, "Id", p), label: d.str(o, "Label", p), returnData: true}
		if !queryIDPattern.MatchString(q.id) || len(q.id) > 255 || ids[q.id] {
			d.fail(cwInvalid("The parameter " + p + "Id must be unique, start with a lowercase letter and hold only letters, digits and underscores."))
			return in
		}
		ids[q.id] = true
		if rd, ok := d.boolean(o, "ReturnData", p); ok {
			q.returnData = rd
		}
		if d.str(o, "Expression", p) != "" {
			d.fail(cwInvalid("The parameter " + p + "Expression is not served by the simulator: use MetricStat."))
			return in
		}
		ms, ok := d.member(o, "MetricStat", p)
		if !ok {
			d.fail(cwMissing("The parameter " + p + "MetricStat is required."))
			return in
		}
		mp := p + "MetricStat."
		met, ok := d.member(ms, "Metric", mp)
		if !ok {
			d.fail(cwMissing("The parameter " + mp + "Metric is required."))
			return in
		}
		q.namespace = d.str(met, "Namespace", mp+"Metric.")
		q.name = d.str(met, "MetricName", mp+"Metric.")
		q.dims = d.dimensions(met, mp+"Metric.")
		q.stat = d.str(ms, "Stat", mp)
		q.unit = d.str(ms, "Unit", mp)
		period, ok := d.integer(ms, "Period", mp)
		if d.err != nil {
			return in
		}
		if q.namespace == "" || q.name == "" {
			d.fail(cwMissing("The parameters " + mp + "Metric.Namespace and MetricName are required."))
			return in
		}
		if !ok || period < 60 || period%60 != 0 || period > 366*24*3600 {
			d.fail(cwInvalid("The parameter " + mp + "Period must be a multiple of 60 (the simulator keeps standard resolution only)."))
			return in
		}
		q.period = period
		if !containsString(cwStats, q.stat) {
			d.fail(cwInvalid("The parameter " + mp + "Stat must be one of " + strings.Join(cwStats, ", ") + " in the simulator."))
			return in
		}
		in.queries = append(in.queries, q)
	}
	return in
}

func (d *cborReader) listMetrics(m cbor.Map) *listMetricsInput {
	in := &listMetricsInput{namespace: d.str(m, "Namespace", ""), name: d.str(m, "MetricName", ""), nextToken: d.str(m, "NextToken", "")}
	switch ra := d.str(m, "RecentlyActive", ""); ra {
	case "":
	case "PT3H":
		in.recentlyActive = true
	default:
		d.fail(cwInvalid("The parameter RecentlyActive must be PT3H."))
	}
	l := d.list(m, "Dimensions", "")
	if len(l) > 10 {
		d.fail(cwInvalid("The parameter Dimensions holds at most 10 filters."))
		return in
	}
	for i, v := range l {
		p := fmt.Sprintf("Dimensions[%d]", i)
		o := d.object(v, p)
		f := dimensionFilter{name: d.str(o, "Name", p+".")}
		if val, ok := o["Value"]; ok && !isNil(val) {
			s := d.str(o, "Value", p+".")
			f.value = &s
		}
		if f.name == "" {
			d.fail(cwMissing("The parameter " + p + ".Name is required."))
			return in
		}
		in.dims = append(in.dims, f)
	}
	return in
}

func containsString(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}
