package sim

import (
	"crypto/rand"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/bedrock-gateway/gateway/internal/bedrock"
)

// asyncJob is one StartAsyncInvoke. It is InProgress until the first GetAsyncInvoke
// looks at it, then Completed.
type asyncJob struct {
	arn, modelArn, token string
	output               json.RawMessage
	status               string
	submitted, modified  time.Time
	ended                time.Time
}

// asyncStore holds async invocations; it is guarded by Simulator.mu.
type asyncStore struct {
	jobs    map[string]*asyncJob
	order   []*asyncJob
	byToken map[string]*asyncJob
}

func newAsyncStore() asyncStore {
	return asyncStore{jobs: map[string]*asyncJob{}, byToken: map[string]*asyncJob{}}
}

// timeFormat is ISO-8601 date-time, the format Bedrock uses for these timestamps.
const timeFormat = "2006-01-02T15:04:05.000Z"

type asyncView struct {
	InvocationArn      string          `json:"invocationArn"`
	ModelArn           string          `json:"modelArn"`
	ClientRequestToken string          `json:"clientRequestToken,omitempty"`
	Status             string          `json:"status"`
	SubmitTime         string          `json:"submitTime"`
	LastModifiedTime   string          `json:"lastModifiedTime"`
	EndTime            string          `json:"endTime,omitempty"`
	OutputDataConfig   json.RawMessage `json:"outputDataConfig"`
}

func (j *asyncJob) view() asyncView {
	v := asyncView{
		InvocationArn: j.arn, ModelArn: j.modelArn, ClientRequestToken: j.token,
		Status: j.status, SubmitTime: j.submitted.Format(timeFormat),
		LastModifiedTime: j.modified.Format(timeFormat), OutputDataConfig: j.output,
	}
	if !j.ended.IsZero() {
		v.EndTime = j.ended.Format(timeFormat)
	}
	return v
}

// regionOf reads the region from a SigV4 Authorization header's credential scope.
func regionOf(auth string) string {
	_, cred, ok := strings.Cut(auth, "Credential=")
	if ok {
		cred, _, _ = strings.Cut(cred, ",")
		if parts := strings.Split(cred, "/"); len(parts) == 5 && parts[2] != "" {
			return parts[2]
		}
	}
	return "us-east-1"
}

func modelArn(region, modelID string) string {
	if strings.HasPrefix(modelID, "arn:") {
		return modelID
	}
	return "arn:aws:bedrock:" + region + "::foundation-model/" + modelID
}

func asyncID() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	var b [12]byte
	_, _ = rand.Read(b[:])
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b[:])
}

func (c *call) startAsyncInvoke() {
	var req struct {
		ClientRequestToken string          `json:"clientRequestToken"`
		ModelID            string          `json:"modelId"`
		ModelInput         json.RawMessage `json:"modelInput"`
		OutputDataConfig   json.RawMessage `json:"outputDataConfig"`
	}
	if err := json.Unmarshal(c.body, &req); err != nil {
		c.fail(malformed())
		return
	}
	if req.ModelID == "" || len(req.ModelInput) == 0 || len(req.OutputDataConfig) == 0 {
		c.fail(bedrock.Validation("modelId, modelInput and outputDataConfig are required."))
		return
	}
	region := regionOf(c.r.Header.Get("Authorization"))
	now := time.Now().UTC()
	s := c.s
	s.mu.Lock()
	j := s.async.byToken[req.ClientRequestToken]
	if j == nil {
		j = &asyncJob{
			arn:      "arn:aws:bedrock:" + region + ":111111111111:async-invoke/" + asyncID(),
			modelArn: modelArn(region, req.ModelID), token: req.ClientRequestToken,
			output: req.OutputDataConfig, status: "InProgress", submitted: now, modified: now,
		}
		s.async.jobs[j.arn] = j
		s.async.order = append(s.async.order, j)
		if j.token != "" {
			s.async.byToken[j.token] = j
		}
	}
	arn := j.arn
	s.mu.Unlock()
	c.writeJSON(struct {
		InvocationArn string `json:"invocationArn"`
	}{arn})
}

func (c *call) getAsyncInvoke() {
	s := c.s
	s.mu.Lock()
	j := s.async.jobs[c.route.InvocationARN]
	var v asyncView
	if j != nil {
		if j.status == "InProgress" {
			now := time.Now().UTC()
			j.status, j.modified, j.ended = "Completed", now, now
		}
		v = j.view()
	}
	s.mu.Unlock()
	if j == nil {
		c.fail(bedrock.NotFound("The specified invocation ARN was not found."))
		return
	}
	c.writeJSON(v)
}

func (c *call) listAsyncInvokes() {
	q := c.r.URL.Query()
	status := q.Get("statusEquals")
	maxResults := 1000
	if v := q.Get("maxResults"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			c.fail(bedrock.Validation("maxResults must be between 1 and 1000."))
			return
		}
		maxResults = n
	}
	offset := 0
	if v := q.Get("nextToken"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			c.fail(bedrock.Validation("The nextToken is invalid."))
			return
		}
		offset = n
	}
	s := c.s
	s.mu.Lock()
	var views []asyncView
	for _, j := range s.async.order {
		if status == "" || j.status == status {
			views = append(views, j.view())
		}
	}
	s.mu.Unlock()
	if q.Get("sortOrder") != "Ascending" { // Bedrock's default is newest first
		slices.Reverse(views)
	}
	resp := struct {
		AsyncInvokeSummaries []asyncView `json:"asyncInvokeSummaries"`
		NextToken            string      `json:"nextToken,omitempty"`
	}{AsyncInvokeSummaries: []asyncView{}}
	if offset < len(views) {
		end := min(offset+maxResults, len(views))
		resp.AsyncInvokeSummaries = views[offset:end]
		if end < len(views) {
			resp.NextToken = strconv.Itoa(end)
		}
	}
	c.writeJSON(resp)
}
