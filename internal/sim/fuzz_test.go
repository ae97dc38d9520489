package sim

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/smithy-go/encoding/cbor"
)

func FuzzInputTokens(f *testing.F) {
	for _, tc := range invokeCases {
		f.Add([]byte(tc.body))
	}
	f.Add([]byte(`{"system":[{"text":1}],"messages":[{"content":[1,"a b",{"text":null}]}],"texts":[2,"x"]}`))
	f.Add([]byte(`{"max_tokens":-1,"inferenceConfig":{"maxTokens":1e300}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		doc := decodeObject(body)
		if n := inputTokens(body, doc); n < 1 {
			t.Fatalf("inputTokens = %d", n)
		}
		if n, ok := requestedMaxTokens(doc); ok && (n < 0 || n > 1<<31) {
			t.Fatalf("requestedMaxTokens = %d", n)
		}
		_ = familyOf(string(body), doc)
	})
}

// FuzzServeHTTP drives the whole request parser: any path, body and control header
// gets a well-formed Bedrock answer.
func FuzzServeHTTP(f *testing.F) {
	f.Add(uint8(1), "/model/anthropic.claude-3-haiku-20240307-v1%3A0/invoke-with-response-stream", []byte(invokeCases[0].body), uint8(3), "")
	f.Add(uint8(1), "/model/amazon.nova-lite-v1%3A0/converse-stream", []byte(`{"messages":[]}`), uint8(2), "5ms")
	f.Add(uint8(1), "/model/x/count-tokens", []byte(`{"input":{"invokeModel":{"body":"eyJwcm9tcHQiOiJhIGIifQ=="}}}`), uint8(0), "")
	f.Add(uint8(1), "/async-invoke", []byte(`{"modelId":"m","modelInput":{},"outputDataConfig":{}}`), uint8(0), "")
	f.Add(uint8(0), "/async-invoke/arn%3Ax", []byte(nil), uint8(0), "")
	f.Add(uint8(0), "/foundation-models/%zz", []byte(nil), uint8(0), "")
	f.Add(uint8(0), "/?Action=GetCallerIdentity&X-Amz-Algorithm=AWS4-HMAC-SHA256", []byte(nil), uint8(0), "")
	f.Add(uint8(1), "/", []byte("Action=GetCallerIdentity&Version=2011-06-15"), uint8(0), "")
	f.Add(uint8(1), "/inference-profiles", []byte(`{"inferenceProfileName":"p","modelSource":{"copyFrom":"arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-lite-v1:0"},"tags":[{"key":"k","value":"v"}]}`), uint8(0), "")
	f.Add(uint8(0), "/inference-profiles?type=APPLICATION&maxResults=1&nextToken=a", []byte(nil), uint8(0), "")
	f.Add(uint8(3), "/inference-profiles/arn%3Aaws%3Abedrock%3Aus-east-1%3A111111111111%3Aapplication-inference-profile%2Fabc", []byte(nil), uint8(0), "")
	f.Add(uint8(1), "/tagResource", []byte(`{"resourceARN":"arn:x","tags":[{"key":"a","value":"b"}]}`), uint8(0), "")
	f.Add(uint8(1), "/listTagsForResource", []byte(`{"resourceARN":1}`), uint8(0), "")
	s := New(Options{})
	methods := []string{"GET", "POST", "PUT", "DELETE"}
	f.Fuzz(func(t *testing.T, m uint8, path string, body []byte, output uint8, delay string) {
		if d, err := time.ParseDuration(delay); err == nil && d > 0 {
			t.Skip() // keep the fuzzer fast
		}
		method := methods[int(m)%len(methods)]
		req := httptest.NewRequest(method, "/", strings.NewReader(string(body)))
		req.RequestURI = "/" + strings.TrimPrefix(path, "/") // the raw target, unparsed
		req.Header.Set(HeaderOutputTokens, strconv.Itoa(int(output)))
		req.Header.Set(HeaderEventDelay, delay)
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		if w.Code == 0 || w.Header().Get("X-Amzn-Requestid") == "" {
			t.Fatalf("%s %s: code %d headers %v", method, path, w.Code, w.Header())
		}
		// The STS stand-in (path "/") answers errors in the AWS Query XML shape instead.
		if w.Code != http.StatusOK && w.Header().Get("X-Amzn-Errortype") == "" && !strings.HasPrefix(w.Header().Get("Content-Type"), "text/xml") {
			t.Fatalf("%s %s: error %d without X-Amzn-ErrorType", method, path, w.Code)
		}
		s.Reset()
	})
}

// FuzzControlPlane creates a profile from any body and then uses what it
// made: nothing panics, every answer is a JSON document or a Bedrock error.
func FuzzControlPlane(f *testing.F) {
	f.Add([]byte(`{"inferenceProfileName":"p","modelSource":{"copyFrom":"arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-lite-v1:0"},"tags":[{"key":"k","value":"v"}]}`), "k")
	f.Add([]byte(`{"inferenceProfileName":"a b","modelSource":{"copyFrom":"arn:aws:bedrock:eu-west-1:111111111111:inference-profile/eu.x"}}`), "")
	f.Add([]byte(`{"modelSource":null,"tags":null}`), "\x00")
	f.Fuzz(func(t *testing.T, body []byte, tagKey string) {
		s := New(Options{})
		do := func(method, target string, b []byte) *httptest.ResponseRecorder {
			req := httptest.NewRequest(method, "/", strings.NewReader(string(b)))
			req.RequestURI = target
			w := httptest.NewRecorder()
			s.ServeHTTP(w, req)
			if w.Code != http.StatusOK && w.Header().Get("X-Amzn-Errortype") == "" {
				t.Fatalf("%s %s: error %d without X-Amzn-ErrorType", method, target, w.Code)
			}
			return w
		}
		do("POST", "/inference-profiles", body)
		for _, p := range s.Profiles() {
			do("GET", "/inference-profiles/"+url.PathEscape(p.ARN), nil)
			tag, _ := json.Marshal(map[string]any{"resourceARN": p.ARN, "tags": []map[string]string{{"key": tagKey, "value": tagKey}}})
			do("POST", "/tagResource", tag)
			do("POST", "/listTagsForResource", []byte(`{"resourceARN":"`+p.ARN+`"}`))
			do("DELETE", "/inference-profiles/"+p.ID, nil)
		}
		do("GET", "/inference-profiles?maxResults=1000", nil)
	})
}

// FuzzCloudWatchInput drives the CloudWatch stand-in's CBOR request decoding:
// any body, for each served operation, decodes to an input or a CloudWatch
// error, never a panic.
func FuzzCloudWatchInput(f *testing.F) {
	for _, seed := range [][]byte{
		nil, {0xa0}, {0xbf, 0xff}, {0x01}, {0xff},
		cbor.Encode(cbor.Map{"Namespace": cbor.String("N"), "MetricData": cbor.List{cbor.Map{
			"MetricName": cbor.String("M"), "Value": cbor.Float64(1),
			"Dimensions": cbor.List{cbor.Map{"Name": cbor.String("a"), "Value": cbor.String("b")}}}}}),
		cbor.Encode(cbor.Map{"Namespace": cbor.String("N"), "MetricData": cbor.List{cbor.Map{
			"MetricName": cbor.String("M"), "Values": cbor.List{cbor.Float64(1), cbor.Uint(2)}, "Counts": cbor.List{cbor.Float64(3), cbor.Float64(1)}}}}),
		cbor.Encode(cbor.Map{"StartTime": &cbor.Tag{ID: 1, Value: cbor.Float64(1.7e9)}, "EndTime": &cbor.Tag{ID: 1, Value: cbor.Uint(1800000000)},
			"MetricDataQueries": cbor.List{cbor.Map{"Id": cbor.String("q"), "MetricStat": cbor.Map{
				"Metric": cbor.Map{"Namespace": cbor.String("N"), "MetricName": cbor.String("M")}, "Period": cbor.Uint(60), "Stat": cbor.String("Sum")}}}}),
		cbor.Encode(cbor.Map{"Dimensions": cbor.List{cbor.Map{"Name": cbor.String("ModelId")}}, "RecentlyActive": cbor.String("PT3H")}),
	} {
		for _, op := range []string{"PutMetricData", "GetMetricData", "ListMetrics"} {
			f.Add(op, seed)
		}
	}
	f.Fuzz(func(t *testing.T, op string, body []byte) {
		in, err := decodeCloudWatchInput(op, body)
		if err != nil {
			if _, ok := errors.AsType[*cwError](err); !ok {
				t.Fatalf("error %T %v is not a *cwError", err, err)
			}
			return
		}
		switch in := in.(type) {
		case *putMetricDataInput:
			if len(in.data) == 0 || in.namespace == "" {
				t.Fatalf("accepted an empty PutMetricData: %+v", in)
			}
			for _, d := range in.data {
				if d.stats.count <= 0 || d.stats.min > d.stats.max {
					t.Fatalf("bad statistics %+v", d.stats)
				}
			}
		case *getMetricDataInput:
			if len(in.queries) == 0 || !in.start.Before(in.end) {
				t.Fatalf("accepted %+v", in)
			}
			for _, q := range in.queries {
				if q.period < 60 {
					t.Fatalf("period %d", q.period)
				}
			}
		case *listMetricsInput:
		default:
			t.Fatalf("decoded %T", in)
		}
	})
}
