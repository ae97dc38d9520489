package proxy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/document"
	brtypes "github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"

	"github.com/bedrock-gateway/gateway/internal/bedrock"
)

const devAccount = "222222222222"

func TestParseAsyncStart(t *testing.T) {
	t.Parallel()
	const output = `"outputDataConfig":{"s3OutputDataConfig":{"s3Uri":"s3://bucket/out"}}`
	tests := []struct {
		name    string
		body    string
		wantErr string // substring of the ValidationException message; "" = valid
		check   func(t *testing.T, req *asyncStart)
	}{
		{name: "as the SDK sends it",
			body: `{"clientRequestToken":"3f1b2c4d-aaaa-bbbb-cccc-0123456789ab","modelId":"nova","modelInput":{"taskType":"TEXT_VIDEO","textToVideoParams":{"text":"a cat"}},` +
				`"outputDataConfig":{"s3OutputDataConfig":{"s3Uri":"s3://bucket/out","kmsKeyId":"alias/k","bucketOwner":"111111111111"}},"tags":[{"key":"team","value":"dev"}]}`,
			check: func(t *testing.T, req *asyncStart) {
				if req.ModelID != "nova" || req.Token != "3f1b2c4d-aaaa-bbbb-cccc-0123456789ab" || req.S3URI != "s3://bucket/out" ||
					req.KMSKeyID != "alias/k" || req.BucketOwner != "111111111111" || len(req.Tags) != 1 || req.Tags[0] != (asyncTag{"team", "dev"}) {
					t.Fatalf("parsed %+v", req)
				}
			}},
		{name: "no token", body: `{"modelId":"nova","modelInput":{},` + output + `}`,
			check: func(t *testing.T, req *asyncStart) {
				if req.Token != "" {
					t.Fatalf("token %q", req.Token)
				}
			}},
		{name: "null token is no token", body: `{"clientRequestToken":null,"modelId":"nova","modelInput":{},` + output + `}`},
		{name: "case variants inside modelInput are the model's business", body: `{"modelId":"nova","modelInput":{"text":"a","Text":"b"},` + output + `}`},

		{name: "modelid beside modelId", body: `{"modelid":"other","modelId":"nova","modelInput":{},` + output + `}`, wantErr: `names the model twice ("modelid" besides modelId)`},
		{name: "MODELID alone", body: `{"MODELID":"nova","modelInput":{},` + output + `}`, wantErr: `"MODELID" besides modelId`},
		{name: "modelId twice", body: `{"modelId":"other","modelId":"nova","modelInput":{},` + output + `}`, wantErr: `member "modelId" twice`},
		{name: "modelId twice, once escaped", body: `{"modelId":"nova","model\u0049d":"other","modelInput":{},` + output + `}`, wantErr: `member "modelId" twice`},
		{name: "duplicate deep in modelInput", body: `{"modelId":"nova","modelInput":{"a":[{"b":1,"b":2}]},` + output + `}`, wantErr: `member "b" twice`},
		{name: "same key in sibling objects is fine", body: `{"modelId":"nova","modelInput":{"a":{"b":1},"c":{"b":2},"d":[{"b":1},{"b":2}]},` + output + `}`},
		{name: "duplicate after a nested object", body: `{"modelId":"nova","modelInput":{"x":{"y":{}},"x":1},` + output + `}`, wantErr: `member "x" twice`},
		{name: "second s3Uri in another case", body: `{"modelId":"nova","modelInput":{},"outputDataConfig":{"s3OutputDataConfig":{"s3Uri":"s3://bucket/out","S3Uri":"s3://evil/x"}}}`,
			wantErr: `s3OutputDataConfig has an unknown member "S3Uri"`},
		{name: "s3Uri twice", body: `{"modelId":"nova","modelInput":{},"outputDataConfig":{"s3OutputDataConfig":{"s3Uri":"s3://bucket/out","s3Uri":"s3://evil/x"}}}`,
			wantErr: `member "s3Uri" twice`},
		{name: "outputDataConfig twice", body: `{"modelId":"nova","modelInput":{},` + output + `,` + output + `}`, wantErr: `member "outputDataConfig" twice`},
		{name: "unknown output member", body: `{"modelId":"nova","modelInput":{},"outputDataConfig":{"S3OutputDataConfig":{"s3Uri":"s3://evil/x"}}}`, wantErr: `outputDataConfig has an unknown member`},
		{name: "unknown top member", body: `{"modelId":"nova","modelInput":{},` + output + `,"OutputDataConfig":{}}`, wantErr: `unknown member "OutputDataConfig"`},
		{name: "tag with extra member", body: `{"modelId":"nova","modelInput":{},` + output + `,"tags":[{"key":"a","value":"b","Key":"c"}]}`, wantErr: `tag has an unknown member "Key"`},
		{name: "tags not a list", body: `{"modelId":"nova","modelInput":{},` + output + `,"tags":{}}`, wantErr: "tags must be a list"},
		{name: "token with a space", body: `{"clientRequestToken":"a b","modelId":"nova","modelInput":{},` + output + `}`, wantErr: "clientRequestToken"},
		{name: "token empty", body: `{"clientRequestToken":"","modelId":"nova","modelInput":{},` + output + `}`, wantErr: "clientRequestToken"},
		{name: "token too long", body: `{"clientRequestToken":"` + strings.Repeat("t", 257) + `","modelId":"nova","modelInput":{},` + output + `}`, wantErr: "clientRequestToken"},
		{name: "token not a string", body: `{"clientRequestToken":7,"modelId":"nova","modelInput":{},` + output + `}`, wantErr: `"clientRequestToken" must be a string`},
		{name: "modelId not a string", body: `{"modelId":["nova"],"modelInput":{},` + output + `}`, wantErr: `"modelId" must be a string`},
		{name: "no modelId", body: `{"modelInput":{},` + output + `}`, wantErr: "'modelId'"},
		{name: "no modelInput", body: `{"modelId":"nova",` + output + `}`, wantErr: "'modelInput'"},
		{name: "no output", body: `{"modelId":"nova","modelInput":{}}`, wantErr: "s3Uri"},
		{name: "not an object", body: `["modelId"]`, wantErr: "must be a JSON object"},
		{name: "not JSON", body: `{"modelId":`, wantErr: "not valid JSON"},
		{name: "empty", body: ``, wantErr: "not valid JSON"},
		{name: "two objects", body: `{"modelId":"nova","modelInput":{},` + output + `} {"modelId":"other"}`, wantErr: "not valid JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req, err := parseAsyncStart([]byte(tt.body))
			if tt.wantErr != "" {
				be, ok := err.(*bedrock.Error)
				if !ok || be.Type != "ValidationException" || !strings.Contains(be.Message, tt.wantErr) {
					t.Fatalf("err = %v, want a ValidationException containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.check != nil {
				tt.check(t, req)
			}
		})
	}
}

func TestAsyncUpstreamBody(t *testing.T) {
	t.Parallel()
	req, err := parseAsyncStart([]byte(`{"clientRequestToken":"job-1","modelId":"nova","modelInput":{"text":"<b>&</b>","n":1.50},` +
		`"outputDataConfig":{"s3OutputDataConfig":{"s3Uri":"s3://bucket/out"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	body, err := req.upstreamBody("amazon.nova-reel-v1:0", devAccount)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"clientRequestToken":"` + upstreamAsyncToken(devAccount, "job-1") + `","modelId":"amazon.nova-reel-v1:0",` +
		`"modelInput":{"text":"<b>&</b>","n":1.50},"outputDataConfig":{"s3OutputDataConfig":{"s3Uri":"s3://bucket/out"}}}`
	if string(body) != want {
		t.Fatalf("forwarded\n%s\nwant\n%s", body, want)
	}
	req.Token = ""
	body, _ = req.upstreamBody("m", devAccount)
	if bytes.Contains(body, []byte("clientRequestToken")) {
		t.Fatalf("a token was invented: %s", body)
	}
}

func TestUpstreamAsyncToken(t *testing.T) {
	t.Parallel()
	// Bedrock's runtime allows [!-~]{1,256}; its other APIs' tokens are
	// alphanumeric runs joined by hyphens. The derived token fits both.
	pattern := regexp.MustCompile(`^[a-zA-Z0-9]{1,256}(-*[a-zA-Z0-9]){0,256}$`)
	tokens := []string{"a", "job-1", "3f1b2c4d-aaaa-bbbb-cccc-0123456789ab", strings.Repeat("~", 256)}
	seen := map[string]bool{}
	for _, account := range []string{devAccount, "333333333333"} {
		for _, tok := range tokens {
			u := upstreamAsyncToken(account, tok)
			if len(u) > 256 || !pattern.MatchString(u) {
				t.Errorf("upstream token %q does not fit Bedrock's pattern", u)
			}
			if u != upstreamAsyncToken(account, tok) {
				t.Error("the derivation is not deterministic: retries would start new jobs")
			}
			if seen[u] {
				t.Errorf("token %q of %s collides", tok, account)
			}
			seen[u] = true
		}
	}
	// Account and token are delimited: moving digits between them changes it.
	if upstreamAsyncToken("22222222222", "2x") == upstreamAsyncToken("222222222222", "x") {
		t.Error("account and token run together")
	}
}

// memOwners is AsyncOwners in memory with the store's first-record-wins rule;
// claimedBy, when set, owns every ARN already (an ARN collision).
type memOwners struct {
	mu        sync.Mutex
	owners    map[string]string
	claimedBy string
}

func (m *memOwners) Record(_ context.Context, arn, account, _ string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.claimedBy != "" {
		return m.claimedBy, nil
	}
	if o, ok := m.owners[arn]; ok {
		return o, nil
	}
	m.owners[arn] = account
	return account, nil
}

func (m *memOwners) Owner(_ context.Context, arn string) (string, string, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	o, ok := m.owners[arn]
	return o, "", ok, nil
}

func (m *memOwners) Owners(_ context.Context, arns []string) (map[string]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]string{}
	for _, a := range arns {
		if o, ok := m.owners[a]; ok {
			out[a] = o
		}
	}
	return out, nil
}

func startAsync(ctx context.Context, c *bedrockruntime.Client, model, s3URI string, token *string) (*bedrockruntime.StartAsyncInvokeOutput, error) {
	return c.StartAsyncInvoke(ctx, &bedrockruntime.StartAsyncInvokeInput{ModelId: aws.String(model), ClientRequestToken: token,
		ModelInput:       document.NewLazyDocument(map[string]any{"taskType": "TEXT_VIDEO", "textToVideoParams": map[string]any{"text": "a cat"}}),
		OutputDataConfig: &brtypes.AsyncInvokeOutputDataConfigMemberS3OutputDataConfig{Value: brtypes.AsyncInvokeS3OutputDataConfig{S3Uri: aws.String(s3URI)}}})
}

func TestStartAsyncInvokeThroughGateway(t *testing.T) {
	t.Parallel()
	owners := &memOwners{owners: map[string]string{}}
	h := newHarness(t, harnessOptions{proxy: func(o *Options) { o.AsyncOwners = owners }})
	c := h.client(t, devAKID, devSecret)
	ctx := t.Context()

	first, err := startAsync(ctx, c, "nova", "s3://bucket/out/run-1", aws.String("job-1"))
	if err != nil {
		t.Fatal(err)
	}
	obs := lastObserved(t, h.sim)
	var fwd map[string]json.RawMessage
	if err := json.Unmarshal(obs.Body, &fwd); err != nil {
		t.Fatal(err)
	}
	keys := make([]string, 0, len(fwd))
	for k := range fwd {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if !slices.Equal(keys, []string{"clientRequestToken", "modelId", "modelInput", "outputDataConfig"}) {
		t.Fatalf("forwarded members %v", keys)
	}
	if string(fwd["modelId"]) != `"amazon.nova-lite-v1:0"` || string(fwd["clientRequestToken"]) != `"`+upstreamAsyncToken(devAccount, "job-1")+`"` {
		t.Fatalf("forwarded %s", obs.Body)
	}
	if o, _, _, _ := owners.Owner(ctx, aws.ToString(first.InvocationArn)); o != devAccount {
		t.Fatalf("owner recorded %q, want %s", o, devAccount)
	}

	// The caller's retry with its token is still idempotent upstream.
	again, err := startAsync(ctx, c, "nova", "s3://bucket/out/run-1", aws.String("job-1"))
	if err != nil || aws.ToString(again.InvocationArn) != aws.ToString(first.InvocationArn) {
		t.Fatalf("retry: %v, %v (first %s)", again, err, aws.ToString(first.InvocationArn))
	}

	// Without a token the SDK makes one up; the gateway derives from it too.
	auto, err := startAsync(ctx, c, "nova", "s3://team-"+devAccount+"/x", nil)
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(auto.InvocationArn) == aws.ToString(first.InvocationArn) {
		t.Fatal("an SDK-generated token reused another invocation")
	}
	if tok := gjsonString(t, lastObserved(t, h.sim).Body, "clientRequestToken"); len(tok) != 64 {
		t.Fatalf("forwarded token %q, want a derived one", tok)
	}

	n := len(h.sim.Requests())
	for _, tc := range []struct{ name, model, uri string }{
		{"outside the prefixes", "nova", "s3://bucket/other"},
		{"not a segment boundary", "nova", "s3://bucket/outside"},
		{"another account's bucket", "nova", "s3://team-333333333333/x"},
		{"climbing out", "nova", "s3://bucket/out/../other"},
		{"entitlement without prefixes", "titan", "s3://bucket/out"},
	} {
		if _, err := startAsync(ctx, c, tc.model, tc.uri, nil); apiErrorCode(err) != "AccessDeniedException" {
			t.Errorf("%s: %v, want AccessDeniedException", tc.name, err)
		}
	}
	if got := len(h.sim.Requests()); got != n {
		t.Fatalf("refused starts reached the upstream (%d requests, want %d)", got, n)
	}
}

// TestStartAsyncInvokeOwnedByAnother: should an ARN ever come back that another
// account owns, the caller is denied and never sees it.
func TestStartAsyncInvokeOwnedByAnother(t *testing.T) {
	t.Parallel()
	owners := &memOwners{owners: map[string]string{}, claimedBy: "333333333333"}
	h := newHarness(t, harnessOptions{proxy: func(o *Options) { o.AsyncOwners = owners }})
	out, err := startAsync(t.Context(), h.client(t, devAKID, devSecret), "nova", "s3://bucket/out", aws.String("job-1"))
	if apiErrorCode(err) != "AccessDeniedException" {
		t.Fatalf("got %v, %v; want AccessDeniedException", out, err)
	}
}

// TestStartAsyncInvokeAttacks sends bodies no SDK would: each must be refused
// before anything goes upstream.
func TestStartAsyncInvokeAttacks(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	const input = `"modelInput":{"taskType":"TEXT_VIDEO","textToVideoParams":{"text":"a cat"}}`
	const output = `"outputDataConfig":{"s3OutputDataConfig":{"s3Uri":"s3://bucket/out"}}`
	tests := []struct{ name, body string }{
		{"unshared model as modelid", `{"modelid":"marketing-only","modelId":"nova",` + input + `,` + output + `}`},
		{"unshared model as ModelId after", `{"modelId":"nova",` + input + `,` + output + `,"ModelId":"amazon.nova-micro-v1:0"}`},
		{"modelId twice", `{"modelId":"amazon.nova-micro-v1:0","modelId":"nova",` + input + `,` + output + `}`},
		{"modelId twice, escaped", `{"model\u0049d":"amazon.nova-micro-v1:0","modelId":"nova",` + input + `,` + output + `}`},
		{"second destination", `{"modelId":"nova",` + input + `,"outputDataConfig":{"s3OutputDataConfig":{"s3Uri":"s3://bucket/out","S3URI":"s3://elsewhere/x"}}}`},
		{"duplicate in modelInput", `{"modelId":"nova","modelInput":{"taskType":"TEXT_VIDEO","taskType":"IMAGE"},` + output + `}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			status, errType := postSigned(t, h.gateway.URL+"/async-invoke", []byte(tt.body))
			if status != http.StatusBadRequest || errType != "ValidationException" {
				t.Fatalf("status %d %s, want 400 ValidationException", status, errType)
			}
		})
	}
	t.Cleanup(func() {
		for _, r := range h.sim.Requests() {
			if r.Op == bedrock.OpStartAsyncInvoke {
				t.Errorf("an attack reached the upstream: %s", r.Body)
			}
		}
	})
}

// postSigned sends body signed by the dev credential, as an SDK would sign it.
func postSigned(t *testing.T, url string, body []byte) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(t.Context(), aws.Credentials{AccessKeyID: devAKID, SecretAccessKey: devSecret}, req,
		hex.EncodeToString(sum[:]), "bedrock", "us-east-1", time.Now()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header.Get("X-Amzn-ErrorType")
}

func gjsonString(t *testing.T, body []byte, key string) string {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	var s string
	_ = json.Unmarshal(m[key], &s)
	return s
}

// FuzzParseAsyncStart: no body makes the parser panic, and whatever it
// accepts is forwarded as JSON naming only the upstream model, once.
func FuzzParseAsyncStart(f *testing.F) {
	f.Add([]byte(`{"clientRequestToken":"t","modelId":"nova","modelInput":{"a":[1,{"b":null}]},"outputDataConfig":{"s3OutputDataConfig":{"s3Uri":"s3://bucket/out"}},"tags":[{"key":"k","value":"v"}]}`))
	f.Add([]byte(`{"modelid":"x","modelId":"nova","modelInput":{},"outputDataConfig":{"s3OutputDataConfig":{"s3Uri":"s3://b/o"}}}`))
	f.Add([]byte(`{"modelId":"nova","modelInput":{"x":{"y":{}},"x":1}}`))
	f.Add([]byte(`[{"a":1},{"a":2}]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := parseAsyncStart(body)
		if err != nil {
			return
		}
		out, err := req.upstreamBody("upstream-model", devAccount)
		if err != nil {
			t.Fatal(err)
		}
		if !json.Valid(out) {
			t.Fatalf("forwarded invalid JSON %s", out)
		}
		var top map[string]json.RawMessage
		if err := json.Unmarshal(out, &top); err != nil {
			t.Fatal(err)
		}
		for k := range top {
			if strings.EqualFold(k, "modelId") && k != "modelId" {
				t.Fatalf("forwarded %q", k)
			}
		}
		if string(top["modelId"]) != `"upstream-model"` || bytes.Count(out, []byte(`"modelId"`)) != 1 {
			t.Fatalf("forwarded %s", out)
		}
	})
}
