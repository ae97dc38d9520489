package proxy

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/bedrock-gateway/gateway/internal/bedrock"
)

// asyncStart is a StartAsyncInvoke body, parsed strictly. The gateway decides
// on modelId and the output location, then forwards a body rebuilt from these
// fields alone: whatever else the caller sent (a second modelId spelled
// "modelid", a second s3Uri) cannot reach an upstream that reads JSON keys
// differently.
type asyncStart struct {
	ModelID     string
	Token       string // "" when the caller sent none
	ModelInput  json.RawMessage
	S3URI       string
	KMSKeyID    string
	BucketOwner string
	Tags        []asyncTag
}

type asyncTag struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// asyncStartBody is the forwarded shape.
type asyncStartBody struct {
	ClientRequestToken string          `json:"clientRequestToken,omitempty"`
	ModelID            string          `json:"modelId"`
	ModelInput         json.RawMessage `json:"modelInput"`
	OutputDataConfig   asyncOutputBody `json:"outputDataConfig"`
	Tags               []asyncTag      `json:"tags,omitempty"`
}

type asyncOutputBody struct {
	S3OutputDataConfig asyncS3Output `json:"s3OutputDataConfig"`
}

type asyncS3Output struct {
	S3URI       string `json:"s3Uri"`
	KMSKeyID    string `json:"kmsKeyId,omitempty"`
	BucketOwner string `json:"bucketOwner,omitempty"`
}

// maxAsyncToken is Bedrock's bound on clientRequestToken (pattern [!-~]*).
const maxAsyncToken = 256

func asyncInvalid(format string, args ...any) error {
	return bedrock.Validation(fmt.Sprintf(format, args...))
}

// shortKey quotes a caller's key for a message, cut to a readable length.
func shortKey(k string) string {
	if len(k) > 64 {
		k = k[:64] + "..."
	}
	return strconv.Quote(k)
}

// parseAsyncStart parses a StartAsyncInvoke body: JSON without duplicate keys
// at any depth; at the top only clientRequestToken, modelId, modelInput,
// outputDataConfig and tags, spelled exactly; outputDataConfig holding exactly
// s3OutputDataConfig with s3Uri and optionally kmsKeyId and bucketOwner.
func parseAsyncStart(body []byte) (*asyncStart, error) {
	if err := checkStrictJSON(body); err != nil {
		return nil, err
	}
	top, err := jsonObject(body, "the request body")
	if err != nil {
		return nil, err
	}
	req := &asyncStart{}
	// In key order, so that a body with several problems always gets the same answer.
	for _, k := range slices.Sorted(maps.Keys(top)) {
		raw := top[k]
		switch k {
		case "modelId":
			req.ModelID, err = jsonString(raw, k)
		case "clientRequestToken":
			req.Token, err = jsonString(raw, k)
			if err == nil && !bytes.Equal(raw, []byte("null")) && !isAsyncToken(req.Token) {
				err = bedrock.Validation("1 validation error detected: Value at 'clientRequestToken' failed to satisfy constraint: Member must have length between 1 and 256 and match pattern [!-~]*")
			}
		case "modelInput":
			if !bytes.Equal(raw, []byte("null")) {
				req.ModelInput = raw
			}
		case "outputDataConfig":
			err = req.parseOutput(raw)
		case "tags":
			req.Tags, err = parseAsyncTags(raw)
		default:
			if strings.EqualFold(k, "modelId") {
				// An upstream that binds keys case-insensitively would read it
				// as the model: never let it through.
				return nil, asyncInvalid("The request body names the model twice (%s besides modelId).", shortKey(k))
			}
			return nil, asyncInvalid("The request body has an unknown member %s.", shortKey(k))
		}
		if err != nil {
			return nil, err
		}
	}
	switch {
	case req.ModelID == "":
		return nil, bedrock.Validation("1 validation error detected: Value null at 'modelId' failed to satisfy constraint: Member must not be null")
	case req.ModelInput == nil:
		return nil, bedrock.Validation("1 validation error detected: Value null at 'modelInput' failed to satisfy constraint: Member must not be null")
	case req.S3URI == "":
		return nil, bedrock.Validation("1 validation error detected: Value null at 'outputDataConfig.s3OutputDataConfig.s3Uri' failed to satisfy constraint: Member must not be null")
	}
	return req, nil
}

func (req *asyncStart) parseOutput(raw json.RawMessage) error {
	out, err := jsonObject(raw, "outputDataConfig")
	if err != nil {
		return err
	}
	for k, v := range out {
		if k != "s3OutputDataConfig" {
			return asyncInvalid("outputDataConfig has an unknown member %s.", shortKey(k))
		}
		s3, err := jsonObject(v, "outputDataConfig.s3OutputDataConfig")
		if err != nil {
			return err
		}
		for k, v := range s3 {
			switch k {
			case "s3Uri":
				req.S3URI, err = jsonString(v, "s3Uri")
			case "kmsKeyId":
				req.KMSKeyID, err = jsonString(v, "kmsKeyId")
			case "bucketOwner":
				req.BucketOwner, err = jsonString(v, "bucketOwner")
			default:
				return asyncInvalid("outputDataConfig.s3OutputDataConfig has an unknown member %s.", shortKey(k))
			}
			if err != nil {
				return err
			}
		}
	}
	return nil
}

func parseAsyncTags(raw json.RawMessage) ([]asyncTag, error) {
	if bytes.Equal(raw, []byte("null")) {
		return nil, nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, bedrock.Validation("tags must be a list of objects with key and value.")
	}
	tags := make([]asyncTag, 0, len(items))
	for _, it := range items {
		obj, err := jsonObject(it, "each tag")
		if err != nil {
			return nil, err
		}
		var tag asyncTag
		for k, v := range obj {
			switch k {
			case "key":
				tag.Key, err = jsonString(v, "tags.key")
			case "value":
				tag.Value, err = jsonString(v, "tags.value")
			default:
				return nil, asyncInvalid("a tag has an unknown member %s.", shortKey(k))
			}
			if err != nil {
				return nil, err
			}
		}
		tags = append(tags, tag)
	}
	return tags, nil
}

// jsonObject decodes an object whose keys are known to be unique
// (checkStrictJSON ran). Map keys match exactly, unlike struct fields.
func jsonObject(raw []byte, what string) (map[string]json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return nil, asyncInvalid("%s must be a JSON object.", what)
	}
	return m, nil
}

// jsonString decodes a string member; null reads as absent.
func jsonString(raw json.RawMessage, name string) (string, error) {
	var s *string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", asyncInvalid("%q must be a string.", name)
	}
	if s == nil {
		return "", nil
	}
	return *s, nil
}

func isAsyncToken(s string) bool {
	if len(s) < 1 || len(s) > maxAsyncToken {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '!' || s[i] > '~' {
			return false
		}
	}
	return true
}

// checkStrictJSON reports whether body is exactly one JSON value with no
// object holding the same key twice, at any depth (keys compared after
// unescaping, as a decoder sees them).
func checkStrictJSON(body []byte) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	type frame struct {
		keys    map[string]struct{} // nil for an array
		wantKey bool
	}
	var stack []frame
	started := false
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			if !started || len(stack) > 0 {
				return bedrock.Validation("The request body is not valid JSON.")
			}
			return nil
		}
		if err != nil {
			return bedrock.Validation("The request body is not valid JSON.")
		}
		if len(stack) == 0 && started {
			return bedrock.Validation("The request body is not valid JSON (data after the object).")
		}
		started = true
		if n := len(stack); n > 0 && stack[n-1].keys != nil && stack[n-1].wantKey {
			if tok == json.Delim('}') {
				stack = stack[:n-1]
			} else {
				key, ok := tok.(string) // the decoder gives nothing else here
				if !ok {
					return bedrock.Validation("The request body is not valid JSON.")
				}
				if _, dup := stack[n-1].keys[key]; dup {
					return asyncInvalid("The request body has the member %s twice in one object.", shortKey(key))
				}
				stack[n-1].keys[key] = struct{}{}
				stack[n-1].wantKey = false
				continue
			}
		} else {
			switch tok {
			case json.Delim('{'):
				stack = append(stack, frame{keys: map[string]struct{}{}, wantKey: true})
				continue // a container is a value once it closes
			case json.Delim('['):
				stack = append(stack, frame{})
				continue
			case json.Delim(']'):
				stack = stack[:len(stack)-1]
			}
		}
		// A value (scalar, or a container just closed) completed: the object
		// around it now wants a key.
		if n := len(stack); n > 0 && stack[n-1].keys != nil {
			stack[n-1].wantKey = true
		}
	}
}

// upstreamAsyncToken derives the idempotency token sent upstream from the
// caller's account and token. Upstream every invocation is the hub's, so two
// accounts sending the same token would otherwise share one invocation (the
// second getting the first's ARN); derived tokens never collide across
// accounts, and the caller's own retries still map to one upstream token.
// 64 hex digits fit Bedrock's 1-256 characters of [!-~] (and the stricter
// alphanumeric pattern of Bedrock's other APIs).
func upstreamAsyncToken(account, token string) string {
	h := sha256.New()
	h.Write([]byte("bedrock-gateway/async-token/v1\x00"))
	h.Write([]byte(account))
	h.Write([]byte{0})
	h.Write([]byte(token))
	return hex.EncodeToString(h.Sum(nil))
}

// upstreamBody is the body forwarded upstream: the validated fields only, with
// the entitlement's upstream model and the derived token.
func (req *asyncStart) upstreamBody(model, account string) ([]byte, error) {
	b := asyncStartBody{
		ModelID:    model,
		ModelInput: req.ModelInput,
		OutputDataConfig: asyncOutputBody{S3OutputDataConfig: asyncS3Output{
			S3URI: req.S3URI, KMSKeyID: req.KMSKeyID, BucketOwner: req.BucketOwner,
		}},
		Tags: req.Tags,
	}
	if req.Token != "" {
		b.ClientRequestToken = upstreamAsyncToken(account, req.Token)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // forward modelInput's text as sent
	if err := enc.Encode(b); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
