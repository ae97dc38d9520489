package main

import (
	"bytes"
	"math"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
)

func TestPercentile(t *testing.T) {
	t.Parallel()
	ms := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(i+1) * time.Millisecond
	}
	tests := []struct {
		name   string
		sorted []time.Duration
		q      float64
		want   time.Duration
	}{
		{"empty", nil, 0.5, 0},
		{"one", ms(7), 0.999, 7 * time.Millisecond},
		{"median of odd", ms(1, 2, 3), 0.5, 2 * time.Millisecond},
		{"median of even takes the lower rank", ms(1, 2, 3, 4), 0.5, 2 * time.Millisecond},
		{"p99 of 100", hundred, 0.99, 99 * time.Millisecond},
		{"p99.9 of 100 is the max", hundred, 0.999, 100 * time.Millisecond},
		{"q 0 is the min", hundred, 0, time.Millisecond},
		{"q 1 is the max", hundred, 1, 100 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := percentile(tt.sorted, tt.q); got != tt.want {
				t.Errorf("percentile(%v) = %v, want %v", tt.q, got, tt.want)
			}
		})
	}
}

func TestSummarizeSorts(t *testing.T) {
	t.Parallel()
	lat := []time.Duration{5, 1, 4, 2, 3}
	s := summarize(lat)
	if s.N != 5 || s.P50 != 3 || s.Max != 5 || s.P99 != 5 {
		t.Errorf("summarize = %+v", s)
	}
	if z := summarize(nil); z != (latencySummary{}) {
		t.Errorf("summarize(nil) = %+v", z)
	}
}

func TestAggregate(t *testing.T) {
	t.Parallel()
	nan := math.NaN()
	tests := []struct {
		name          string
		in            []float64
		med, min, max float64
		n             int
	}{
		{"odd", []float64{3, 1, 2}, 2, 1, 3, 3},
		{"even averages the middle", []float64{4, 1, 3, 2}, 2.5, 1, 4, 4},
		{"NaN rounds are ignored", []float64{nan, 5, nan}, 5, 5, 5, 1},
		{"one outlier does not move the median", []float64{10, 11, 1000}, 11, 10, 1000, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := aggregate(tt.in)
			if s.Med != tt.med || s.Min != tt.min || s.Max != tt.max || s.N != tt.n {
				t.Errorf("aggregate(%v) = %+v", tt.in, s)
			}
		})
	}
	if s := aggregate([]float64{nan}); !math.IsNaN(s.Med) || fmtSpread(s, 2) != "n/a" {
		t.Errorf("all NaN: %+v", s)
	}
}

func TestFormatSpread(t *testing.T) {
	t.Parallel()
	// A NaN (a round missing on one side) is left out of the spread.
	if got := fmtSpread(aggregate([]float64{0.8, 0.9, math.NaN()}), 2); got != "0.85 (0.80–0.90)" {
		t.Errorf("fmtSpread = %q", got)
	}
	if got := fmtSpread(aggregate([]float64{1.23456}), 3); got != "1.235" {
		t.Errorf("fmtSpread one round = %q", got)
	}
}

func encodeFrames(t *testing.T, msgs ...eventstream.Message) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := eventstream.NewEncoder()
	for _, m := range msgs {
		if err := enc.Encode(&buf, m); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

func event(typ string, payload string) eventstream.Message {
	return eventstream.Message{Headers: eventstream.Headers{
		{Name: ":event-type", Value: eventstream.StringValue(typ)},
		{Name: ":message-type", Value: eventstream.StringValue("event")},
	}, Payload: []byte(payload)}
}

func TestFrameTrackerAnySplit(t *testing.T) {
	t.Parallel()
	body := encodeFrames(t, event("messageStart", `{"role":"assistant"}`), event("contentBlockDelta", `{"delta":{"text":"hi"}}`),
		event("messageStop", `{}`))
	exc := encodeFrames(t, eventstream.Message{Headers: eventstream.Headers{
		{Name: ":exception-type", Value: eventstream.StringValue("internalServerException")},
		{Name: ":message-type", Value: eventstream.StringValue("exception")},
	}, Payload: []byte(`{"message":"x"}`)})
	for _, piece := range []int{1, 3, 7, 12, 13, 64, len(body)} {
		var f frameTracker
		f.reset(time.Now(), true, nil)
		for rest := body; len(rest) > 0; {
			k := min(piece, len(rest))
			if err := f.feed(rest[:k]); err != nil {
				t.Fatalf("piece %d: %v", piece, err)
			}
			rest = rest[k:]
		}
		if f.frames != 3 || f.exception || len(f.gaps) != 2 || f.preN != 0 {
			t.Errorf("piece %d: frames %d exception %v gaps %d", piece, f.frames, f.exception, len(f.gaps))
		}
		f.reset(time.Now(), false, nil)
		if err := f.feed(exc); err != nil || !f.exception || f.frames != 1 {
			t.Errorf("exception frame: err %v exception %v frames %d", err, f.exception, f.frames)
		}
	}
	var f frameTracker
	if err := f.feed([]byte{0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0}); err == nil {
		t.Error("a frame shorter than its prelude was accepted")
	}
}

// TestRoundTripParsesResponses feeds canned HTTP/1.1 responses (fixed length,
// chunked event stream, error) through one connection, in order.
func TestRoundTripParsesResponses(t *testing.T) {
	t.Parallel()
	frames := encodeFrames(t, event("messageStart", `{}`), event("messageStop", `{}`))
	var chunked bytes.Buffer
	chunked.WriteString("HTTP/1.1 200 OK\r\nContent-Type: application/vnd.amazon.eventstream\r\nTransfer-Encoding: chunked\r\n\r\n")
	for _, part := range [][]byte{frames[:5], frames[5:]} {
		chunked.WriteString(hexLen(len(part)) + "\r\n")
		chunked.Write(part)
		chunked.WriteString("\r\n")
	}
	chunked.WriteString("0\r\n\r\n")
	responses := []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
		chunked.String(),
		"HTTP/1.1 403 Forbidden\r\ncontent-length: 20\r\n\r\n{\"message\":\"denied\"}",
	}
	client, server := net.Pipe()
	defer client.Close()
	go func() {
		defer server.Close()
		buf := make([]byte, 4)
		for _, r := range responses {
			if _, err := server.Read(buf); err != nil { // one request each
				return
			}
			if _, err := server.Write([]byte(r)); err != nil {
				return
			}
		}
	}()
	c := &clientConn{nc: client, scratch: make([]byte, 1024)}
	c.br = newReader(client)
	if st, err := c.roundTrip([]byte("GET1"), nil); err != nil || st != 200 {
		t.Fatalf("fixed length: %d %v", st, err)
	}
	var f frameTracker
	f.reset(time.Now(), false, nil)
	if st, err := c.roundTrip([]byte("GET2"), &f); err != nil || st != 200 || f.frames != 2 {
		t.Fatalf("chunked stream: %d %v frames %d", st, err, f.frames)
	}
	if st, err := c.roundTrip([]byte("GET3"), nil); err != nil || st != 403 || c.errBody != `{"message":"denied"}` {
		t.Fatalf("error: %d %v %q", st, err, c.errBody)
	}
}

func TestGeneratedOrgIsValidAndEntitled(t *testing.T) {
	t.Parallel()
	org, err := generateOrg(defaultShape)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(org.Callers); got != defaultShape.Credentials*defaultShape.CallersPerCred {
		t.Errorf("%d callers", got)
	}
}

func hexLen(n int) string { return strconv.FormatInt(int64(n), 16) }

func TestParseCommandStats(t *testing.T) {
	t.Parallel()
	info := "# Commandstats\r\ncmdstat_evalsha:calls=20,usec=100,usec_per_call=5.00,rejected_calls=0,failed_calls=0\r\n" +
		"cmdstat_info:calls=1,usec=30,usec_per_call=30.00,rejected_calls=0,failed_calls=0\r\n"
	got := parseCommandStats(info)
	if len(got) != 2 || got[0] != (redisCommandStat{"evalsha", 20, 5}) || got[1].Command != "info" {
		t.Errorf("parseCommandStats = %+v", got)
	}
}
