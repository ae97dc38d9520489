package sim

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/smithy-go/encoding/cbor"

	"github.com/bedrock-gateway/gateway/internal/bedrock"
)

// The CloudWatch stand-in: the simulator also answers PutMetricData (stored),
// GetMetricData (MetricStat queries over what was stored, and over the
// AWS/Bedrock metrics of what its own runtime served) and ListMetrics, in the
// protocol the current aws-sdk-go-v2 CloudWatch client speaks: Smithy RPC v2
// CBOR (POST /service/GraniteServiceVersion20100801/operation/<Op>,
// Smithy-Protocol: rpc-v2-cbor, bodies in CBOR), with awsQuery-compatible
// error codes (X-Amzn-Query-Error). CloudWatch is regional: every metric lives
// in the region its request was signed for (us-east-1 for unsigned requests
// and bearer-token runtime calls), so one simulator stands in for every region.

// CloudWatchPathPrefix is the path prefix of CloudWatch calls; the operation
// name follows it.
const CloudWatchPathPrefix = "/service/GraniteServiceVersion20100801/operation/"

// BedrockNamespace is the namespace of the metrics Bedrock publishes itself.
const BedrockNamespace = "AWS/Bedrock"

// The AWS/Bedrock metrics the simulator serves, per ModelId (the model label
// of the runtime call: a model ID or an inference-profile ARN).
const (
	BedrockMetricInvocations  = "Invocations"
	BedrockMetricInputTokens  = "InputTokenCount"
	BedrockMetricOutputTokens = "OutputTokenCount"
	BedrockDimensionModelID   = "ModelId"
)

// DefaultRegion is the region of a call whose signature names none.
const DefaultRegion = "us-east-1"

// maxCloudWatchBody is PutMetricData's payload limit (1 MB) plus room.
const maxCloudWatchBody = 1<<20 + 64<<10

// statSet is a CloudWatch statistic set.
type statSet struct{ count, sum, min, max float64 }

func (a *statSet) add(b statSet) {
	if a.count == 0 {
		*a = b
		return
	}
	a.count += b.count
	a.sum += b.sum
	a.min = min(a.min, b.min)
	a.max = max(a.max, b.max)
}

// Dimension is a CloudWatch dimension.
type Dimension struct{ Name, Value string }

type seriesKey struct{ region, namespace, name, dims string }

// series is one metric of one region: its datapoints aggregated per minute
// (CloudWatch's standard resolution).
type series struct {
	key    seriesKey
	dims   []Dimension // sorted by name
	unit   string
	points map[int64]*statSet // minute (Unix seconds) -> statistics
}

// metricStore holds every metric the CloudWatch stand-in serves. It has its
// own lock: the runtime's report path takes it under Simulator.mu, never the
// other way round.
type metricStore struct {
	mu     sync.Mutex
	series map[seriesKey]*series
	calls  map[string]int // CloudWatch calls per operation
}

func newMetricStore() *metricStore {
	return &metricStore{series: make(map[seriesKey]*series)}
}

// dimsKey is the identity of a dimension set: CloudWatch ignores their order.
func dimsKey(dims []Dimension) ([]Dimension, string) {
	d := slices.Clone(dims)
	slices.SortFunc(d, func(a, b Dimension) int { return strings.Compare(a.Name, b.Name) })
	var b strings.Builder
	for _, x := range d {
		b.WriteString(x.Name)
		b.WriteByte(0)
		b.WriteString(x.Value)
		b.WriteByte(0)
	}
	return d, b.String()
}

func (m *metricStore) put(region, ns, name string, dims []Dimension, unit string, t time.Time, st statSet) {
	d, k := dimsKey(dims)
	key := seriesKey{region, ns, name, k}
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.series[key]
	if s == nil {
		s = &series{key: key, dims: d, points: make(map[int64]*statSet)}
		m.series[key] = s
	}
	if unit != "" {
		s.unit = unit
	}
	minute := t.Unix() - t.Unix()%60
	if t.Unix() < 0 && t.Unix()%60 != 0 {
		minute -= 60
	}
	p := s.points[minute]
	if p == nil {
		p = &statSet{}
		s.points[minute] = p
	}
	p.add(st)
}

// recordModelUsage records one runtime call that reported usage as Bedrock's
// own metrics: the one place the simulator keeps its per-ModelId usage.
func (m *metricStore) recordModelUsage(region, modelID string, u bedrock.Usage, t time.Time) {
	dims := []Dimension{{BedrockDimensionModelID, modelID}}
	one := func(v float64) statSet { return statSet{1, v, v, v} }
	m.put(region, BedrockNamespace, BedrockMetricInvocations, dims, "Count", t, one(1))
	m.put(region, BedrockNamespace, BedrockMetricInputTokens, dims, "Count", t, one(float64(u.InputTokens)))
	m.put(region, BedrockNamespace, BedrockMetricOutputTokens, dims, "Count", t, one(float64(u.OutputTokens)))
}

func (m *metricStore) resetNamespace(ns string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k := range m.series {
		if k.namespace == ns {
			delete(m.series, k)
		}
	}
	m.calls = nil
}

// ModelUsage is what the simulator's runtime served for one model label in
// one region: the source of its AWS/Bedrock metrics.
type ModelUsage struct {
	Region  string
	ModelID string // the model label of the runtime path: a model ID or an inference-profile ARN
	// Invocations counts the calls whose usage reached the client.
	Invocations, InputTokens, OutputTokens int64
}

// UsageByModelID is ModelUsage summed over regions, keyed by ModelId (Region
// empty): what the simulator served for each model ID as the caller named it
// in the path (a base model ID, an ARN, an application inference profile ARN
// or ID).
func (s *Simulator) UsageByModelID() map[string]ModelUsage {
	out := map[string]ModelUsage{}
	for _, u := range s.ModelUsage() {
		t := out[u.ModelID]
		t.ModelID = u.ModelID
		t.Invocations += u.Invocations
		t.InputTokens += u.InputTokens
		t.OutputTokens += u.OutputTokens
		out[u.ModelID] = t
	}
	return out
}

// ModelUsage returns, per region and ModelId, the usage the runtime reported
// to its clients since New or the last Reset (gateway or not: calls made
// straight to the simulator with hub credentials count too), sorted by region
// and ModelId. It is what GetMetricData answers for AWS/Bedrock.
func (s *Simulator) ModelUsage() []ModelUsage {
	s.cw.mu.Lock()
	defer s.cw.mu.Unlock()
	type key struct{ region, model string }
	agg := map[key]*ModelUsage{}
	for k, sr := range s.cw.series {
		if k.namespace != BedrockNamespace || len(sr.dims) != 1 || sr.dims[0].Name != BedrockDimensionModelID {
			continue
		}
		mk := key{k.region, sr.dims[0].Value}
		u := agg[mk]
		if u == nil {
			u = &ModelUsage{Region: mk.region, ModelID: mk.model}
			agg[mk] = u
		}
		var sum float64
		for _, p := range sr.points {
			sum += p.sum
		}
		switch k.name {
		case BedrockMetricInvocations:
			u.Invocations += int64(sum)
		case BedrockMetricInputTokens:
			u.InputTokens += int64(sum)
		case BedrockMetricOutputTokens:
			u.OutputTokens += int64(sum)
		}
	}
	out := make([]ModelUsage, 0, len(agg))
	for _, u := range agg {
		out = append(out, *u)
	}
	slices.SortFunc(out, func(a, b ModelUsage) int {
		if c := strings.Compare(a.Region, b.Region); c != 0 {
			return c
		}
		return strings.Compare(a.ModelID, b.ModelID)
	})
	return out
}

// CloudWatchCalls returns how many CloudWatch calls of each operation were
// answered (successfully or not) since New or the last Reset.
func (s *Simulator) CloudWatchCalls() map[string]int {
	s.cw.mu.Lock()
	defer s.cw.mu.Unlock()
	out := make(map[string]int, len(s.cw.calls))
	for k, v := range s.cw.calls {
		out[k] = v
	}
	return out
}

// isCloudWatch reports whether r is a CloudWatch call.
func isCloudWatch(r *http.Request) bool {
	return r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, CloudWatchPathPrefix)
}

// signingRegion is the region of r's SigV4 credential scope, DefaultRegion
// when it has none (unsigned, or a bearer token).
func signingRegion(h http.Header) string {
	if a, ok := parseSigV4(h.Values("Authorization")); ok && a.region != "" {
		return a.region
	}
	return DefaultRegion
}

// cwError is a CloudWatch error answer: the shape name goes in the body's
// __type, the awsQuery code (what SDKs report as the error code) in
// X-Amzn-Query-Error.
type cwError struct {
	status    int
	shape     string
	queryCode string
	msg       string
}

func (e *cwError) Error() string { return e.queryCode + ": " + e.msg }

func cwInvalid(msg string) *cwError {
	return &cwError{http.StatusBadRequest, "InvalidParameterValueException", "InvalidParameterValue", msg}
}

func cwCombination(msg string) *cwError {
	return &cwError{http.StatusBadRequest, "InvalidParameterCombinationException", "InvalidParameterCombination", msg}
}

func cwMissing(msg string) *cwError {
	return &cwError{http.StatusBadRequest, "MissingRequiredParameterException", "MissingParameter", msg}
}

// cwFaultError is how CloudWatch answers an injected fault.
func cwFaultError(fault string) *cwError {
	switch fault {
	case FaultThrottle:
		return &cwError{http.StatusBadRequest, "ThrottlingException", "Throttling", "Rate exceeded"}
	case FaultUnavailable:
		return &cwError{http.StatusServiceUnavailable, "ServiceUnavailableException", "ServiceUnavailable", "Service is unavailable."}
	}
	return &cwError{http.StatusInternalServerError, "InternalServiceFault", "InternalServiceError", "Internal service error."}
}

func (s *Simulator) serveCloudWatch(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Amzn-Requestid", newRequestID())
	op := strings.TrimPrefix(r.URL.Path, CloudWatchPathPrefix)
	s.cw.mu.Lock()
	if s.cw.calls == nil {
		s.cw.calls = make(map[string]int)
	}
	s.cw.calls[op]++
	s.cw.mu.Unlock()

	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxCloudWatchBody))
	if err != nil {
		if _, tooBig := errors.AsType[*http.MaxBytesError](err); tooBig {
			writeCWError(w, &cwError{http.StatusRequestEntityTooLarge, "RequestEntityTooLargeException", "RequestEntityTooLarge", "Request size exceeded the 1 MB limit."})
		}
		return // or the client went away mid-body
	}
	out, err := s.cloudWatchAnswer(r, op, body)
	if err != nil {
		if err == errAbort {
			(&call{r: r, w: w}).abort()
			return
		}
		ce, ok := errors.AsType[*cwError](err)
		if !ok {
			ce = &cwError{http.StatusInternalServerError, "InternalServiceFault", "InternalServiceError", "Internal service error."}
		}
		s.log.Debug("sim: cloudwatch call refused", "op", op, "err", ce)
		writeCWError(w, ce)
		return
	}
	w.Header().Set("Smithy-Protocol", "rpc-v2-cbor")
	w.Header().Set("Content-Type", "application/cbor")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(cbor.Encode(out))
}

// maxCloudWatchInflated bounds a gzipped body once inflated.
const maxCloudWatchInflated = 16 << 20

func gunzip(b []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	out, err := io.ReadAll(io.LimitReader(zr, maxCloudWatchInflated+1))
	if err != nil {
		return nil, err
	}
	if len(out) > maxCloudWatchInflated {
		return nil, errors.New("inflated body too large")
	}
	return out, nil
}

// errAbort asks serveCloudWatch to drop the connection (the reset fault).
var errAbort = errors.New("abort")

func writeCWError(w http.ResponseWriter, e *cwError) {
	h := w.Header()
	h.Set("Smithy-Protocol", "rpc-v2-cbor")
	h.Set("Content-Type", "application/cbor")
	fault := "Sender"
	if e.status >= 500 {
		fault = "Receiver"
	}
	h.Set("X-Amzn-Query-Error", e.queryCode+";"+fault)
	w.WriteHeader(e.status)
	_, _ = w.Write(cbor.Encode(cbor.Map{
		"__type":  cbor.String("com.amazonaws.cloudwatch#" + e.shape),
		"message": cbor.String(e.msg),
	}))
}

// cloudWatchAnswer checks, decodes and answers one call.
func (s *Simulator) cloudWatchAnswer(r *http.Request, op string, body []byte) (cbor.Map, error) {
	if s.opts.VerifyCloudWatch != nil {
		if err := s.opts.VerifyCloudWatch(r, body); err != nil {
			msg := "The request signature we calculated does not match the signature you provided."
			if oe, ok := errors.AsType[*orgError](err); ok {
				msg = oe.msg
			}
			return nil, &cwError{http.StatusForbidden, "SignatureDoesNotMatch", "SignatureDoesNotMatch", msg}
		}
	}
	if r.Header.Get("Smithy-Protocol") != "rpc-v2-cbor" {
		return nil, &cwError{http.StatusBadRequest, "ValidationException", "InvalidAction", "Smithy-Protocol must be rpc-v2-cbor."}
	}
	fault, err := s.orgFault(r)
	if err != nil {
		return nil, cwInvalid(HeaderFault + " must be one of " + strings.Join(Faults(), ", ") + ".")
	}
	if fault == FaultReset {
		return nil, errAbort
	}
	if fault != "" {
		return nil, cwFaultError(fault)
	}
	if enc := r.Header.Get("Content-Encoding"); enc != "" {
		// The SDK gzips PutMetricData (the signature covers the compressed bytes).
		if !strings.EqualFold(enc, "gzip") {
			return nil, cwInvalid("Content-Encoding " + enc + " is not supported.")
		}
		if body, err = gunzip(body); err != nil {
			return nil, cwInvalid("The request body is not valid gzip.")
		}
	}
	in, err := decodeCloudWatchInput(op, body)
	if err != nil {
		return nil, err
	}
	region := signingRegion(r.Header)
	switch in := in.(type) {
	case *putMetricDataInput:
		for _, d := range in.data {
			s.cw.put(region, in.namespace, d.name, d.dims, d.unit, d.t, d.stats)
		}
		return cbor.Map{}, nil
	case *getMetricDataInput:
		return s.cw.getMetricData(region, in)
	case *listMetricsInput:
		return s.cw.listMetrics(region, in)
	}
	return nil, cwFaultError(FaultInternal)
}
