package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// operation is a benchmarked Bedrock Runtime call.
type operation struct {
	Name   string // as in the report: InvokeModel, Converse, ConverseStream
	Suffix string // path after /model/<id>/
	Body   []byte
	Accept string
	Stream bool
}

var operations = []operation{
	{Name: "InvokeModel", Suffix: "invoke", Accept: "application/json",
		Body: []byte(`{"anthropic_version":"bedrock-2023-05-31","max_tokens":16,"messages":[{"role":"user","content":"hello"}]}`)},
	{Name: "Converse", Suffix: "converse", Accept: "application/json",
		Body: []byte(`{"messages":[{"role":"user","content":[{"text":"hello"}]}],"inferenceConfig":{"maxTokens":16}}`)},
	{Name: "ConverseStream", Suffix: "converse-stream", Accept: "application/vnd.amazon.eventstream", Stream: true,
		Body: []byte(`{"messages":[{"role":"user","content":[{"text":"hello"}]}],"inferenceConfig":{"maxTokens":16}}`)},
}

// caller is who signs a request and which model ID it names.
type caller struct {
	Creds   aws.Credentials
	ModelID string // path label, already escaped
}

// requestPool holds pre-signed, pre-serialised requests. Signatures are valid
// for five minutes around X-Amz-Date, so a pool is re-signed every minute while
// a run uses it; reusing a signed request is fine (SigV4 has no nonce).
type requestPool struct {
	reqs atomic.Pointer[[][]byte]
	make func(now time.Time) ([][]byte, error)
}

func (p *requestPool) get(i int) []byte {
	r := *p.reqs.Load()
	return r[i%len(r)]
}

// newRequestPool signs one request per caller for op against host, with extra
// headers (signed too), and keeps them fresh until ctx ends.
func newRequestPool(ctx context.Context, host string, op operation, callers []caller, extra http.Header) (*requestPool, error) {
	p := &requestPool{make: func(now time.Time) ([][]byte, error) {
		out := make([][]byte, 0, len(callers))
		for _, c := range callers {
			b, err := signedRequest(ctx, host, op, c, extra, now)
			if err != nil {
				return nil, err
			}
			out = append(out, b)
		}
		return out, nil
	}}
	reqs, err := p.make(time.Now())
	if err != nil {
		return nil, err
	}
	p.reqs.Store(&reqs)
	go func() {
		t := time.NewTicker(time.Minute)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-t.C:
				if reqs, err := p.make(now); err == nil {
					p.reqs.Store(&reqs)
				}
			}
		}
	}()
	return p, nil
}

// signedRequest signs with the AWS SDK's own SigV4 signer, exactly as an SDK
// client would, and serialises the request for the wire.
func signedRequest(ctx context.Context, host string, op operation, c caller, extra http.Header, now time.Time) ([]byte, error) {
	path := "/model/" + c.ModelID + "/" + op.Suffix
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+host+path, bytes.NewReader(op.Body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", op.Accept)
	for k, vv := range extra {
		req.Header[k] = vv
	}
	sum := sha256.Sum256(op.Body)
	if err := v4.NewSigner().SignHTTP(ctx, c.Creds, req, hex.EncodeToString(sum[:]), "bedrock", "us-east-1", now); err != nil {
		return nil, fmt.Errorf("signing: %w", err)
	}
	var b bytes.Buffer
	b.WriteString("POST " + req.URL.EscapedPath() + " HTTP/1.1\r\nHost: " + host + "\r\n")
	keys := make([]string, 0, len(req.Header))
	for k := range req.Header {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		for _, v := range req.Header[k] {
			b.WriteString(k + ": " + v + "\r\n")
		}
	}
	b.WriteString("Content-Length: " + strconv.Itoa(len(op.Body)) + "\r\n\r\n")
	b.Write(op.Body)
	return b.Bytes(), nil
}
