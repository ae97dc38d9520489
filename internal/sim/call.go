package sim

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/bedrock-gateway/gateway/internal/bedrock"
)

// call is one request being answered.
type call struct {
	s           *Simulator
	w           http.ResponseWriter
	r           *http.Request
	rec         *record
	start       time.Time
	requestID   string
	body        []byte
	route       bedrock.Route
	ctl         controls
	wroteHeader bool
}

func (c *call) setBody(b []byte) {
	c.s.mu.Lock()
	c.rec.Body = b
	c.s.mu.Unlock()
}

func (c *call) setStatus(code int) {
	c.wroteHeader = true
	c.s.mu.Lock()
	c.rec.Status = code
	c.s.mu.Unlock()
}

// finish logs the call; it runs even when the handler aborts.
func (c *call) finish() {
	if !c.s.log.Enabled(c.r.Context(), slog.LevelDebug) {
		return
	}
	c.s.mu.Lock()
	o := c.rec.Observed
	c.s.mu.Unlock()
	c.s.log.Debug("sim: request", "op", o.Op.String(), "model", o.ModelID, "status", o.Status,
		"fault", o.Fault, "input_tokens", o.Usage.InputTokens, "output_tokens", o.Usage.OutputTokens,
		"request_id", c.requestID, "duration", time.Since(c.start))
}

func (c *call) fail(e *bedrock.Error) {
	c.setStatus(e.Status)
	bedrock.WriteError(c.w, c.requestID, e)
}

func (c *call) elapsedMs() int64 { return time.Since(c.start).Milliseconds() }

// writeJSON sends a 200 JSON response; it reports whether the body was written.
func (c *call) writeJSON(v any) bool {
	b, err := json.Marshal(v)
	if err != nil {
		c.fail(bedrock.Internal("The simulator could not encode its response."))
		return false
	}
	return c.writeBody("application/json", b)
}

func (c *call) writeBody(contentType string, b []byte) bool {
	h := c.w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Content-Length", strconv.Itoa(len(b)))
	h.Set("Date", time.Now().UTC().Format(http.TimeFormat))
	c.setStatus(http.StatusOK)
	c.w.WriteHeader(http.StatusOK)
	_, err := c.w.Write(b)
	return err == nil
}

func (c *call) dispatch() {
	switch c.route.Op {
	case bedrock.OpInvokeModel:
		c.invokeModel()
	case bedrock.OpInvokeModelWithResponseStream:
		c.invokeModelStream()
	case bedrock.OpConverse:
		c.converse()
	case bedrock.OpConverseStream:
		c.converseStream()
	case bedrock.OpCountTokens:
		c.countTokens()
	case bedrock.OpApplyGuardrail:
		c.applyGuardrail()
	case bedrock.OpStartAsyncInvoke:
		c.startAsyncInvoke()
	case bedrock.OpGetAsyncInvoke:
		c.getAsyncInvoke()
	case bedrock.OpListAsyncInvokes:
		c.listAsyncInvokes()
	case bedrock.OpListFoundationModels:
		c.listFoundationModels()
	case bedrock.OpGetFoundationModel:
		c.getFoundationModel()
	case bedrock.OpInvokeModelWithBidirectionalStream:
		c.fail(bedrock.Validation("bidirectional streaming is not supported by the simulator"))
	default:
		c.fail(bedrock.Validation("The simulator does not implement this operation."))
	}
}

func malformed() *bedrock.Error {
	return bedrock.Validation("Malformed input request, please reformat your input and try again.")
}

// plan computes the generation for a request body. JSON operations (Converse) need
// a JSON object; InvokeModel bodies are opaque blobs.
func (c *call) plan(jsonRequired bool) (*generation, *bedrock.Error) {
	doc := decodeObject(c.body)
	if doc == nil && jsonRequired {
		return nil, malformed()
	}
	g := &generation{
		fam:        familyOf(c.route.ModelID, doc),
		modelID:    c.route.ModelID,
		requestID:  c.requestID,
		input:      inputTokens(c.body, doc),
		output:     c.ctl.output,
		cacheRead:  c.ctl.cacheRead,
		cacheWrite: c.ctl.cacheWrite,
	}
	if limit, ok := requestedMaxTokens(doc); ok && limit < g.output {
		g.output, g.capped = limit, true
	}
	if g.fam == famEmbed {
		g.output, g.capped = 0, false
	}
	return g, nil
}

func (g *generation) usage() bedrock.Usage {
	return bedrock.Usage{InputTokens: g.input, OutputTokens: g.output, CacheReadTokens: g.cacheRead, CacheWriteTokens: g.cacheWrite}
}

func (c *call) invokeModel() {
	g, be := c.plan(false)
	if be != nil {
		c.fail(be)
		return
	}
	h := c.w.Header()
	h.Set("X-Amzn-Bedrock-Input-Token-Count", strconv.FormatInt(g.input, 10))
	h.Set("X-Amzn-Bedrock-Output-Token-Count", strconv.FormatInt(g.output, 10))
	h.Set("X-Amzn-Bedrock-Invocation-Latency", strconv.FormatInt(c.elapsedMs(), 10))
	if g.cacheRead > 0 {
		h.Set("X-Amzn-Bedrock-Cache-Read-Input-Token-Count", strconv.FormatInt(g.cacheRead, 10))
	}
	if g.cacheWrite > 0 {
		h.Set("X-Amzn-Bedrock-Cache-Write-Input-Token-Count", strconv.FormatInt(g.cacheWrite, 10))
	}
	if c.writeBody("application/json", g.invokeBody()) {
		c.s.report(c.rec, g.usage())
	}
}

// converseUsage is Converse's TokenUsage.
type converseUsage struct {
	InputTokens           int64 `json:"inputTokens"`
	OutputTokens          int64 `json:"outputTokens"`
	TotalTokens           int64 `json:"totalTokens"`
	CacheReadInputTokens  int64 `json:"cacheReadInputTokens,omitempty"`
	CacheWriteInputTokens int64 `json:"cacheWriteInputTokens,omitempty"`
}

func (g *generation) converseUsage() converseUsage {
	return converseUsage{
		InputTokens: g.input, OutputTokens: g.output,
		TotalTokens:          g.input + g.output + g.cacheRead + g.cacheWrite,
		CacheReadInputTokens: g.cacheRead, CacheWriteInputTokens: g.cacheWrite,
	}
}

type latencyMetrics struct {
	LatencyMs int64 `json:"latencyMs"`
}

func (c *call) conversePlan() (*generation, *bedrock.Error) {
	g, be := c.plan(true)
	if be != nil {
		return nil, be
	}
	if g.fam == famEmbed {
		return nil, bedrock.Validation("This action doesn't support the model that you provided. Try again with a supported text or chat model.")
	}
	return g, nil
}

func (c *call) converse() {
	g, be := c.conversePlan()
	if be != nil {
		c.fail(be)
		return
	}
	resp := struct {
		Output struct {
			Message message `json:"message"`
		} `json:"output"`
		StopReason string         `json:"stopReason"`
		Usage      converseUsage  `json:"usage"`
		Metrics    latencyMetrics `json:"metrics"`
	}{StopReason: g.stopReason(), Usage: g.converseUsage(), Metrics: latencyMetrics{c.elapsedMs()}}
	resp.Output.Message = message{Role: "assistant", Content: []textBlock{{Text: g.text()}}}
	if c.writeJSON(resp) {
		c.s.report(c.rec, g.usage())
	}
}

func (c *call) countTokens() {
	var req struct {
		Input struct {
			InvokeModel *struct {
				Body []byte `json:"body"`
			} `json:"invokeModel"`
			Converse json.RawMessage `json:"converse"`
		} `json:"input"`
	}
	if err := json.Unmarshal(c.body, &req); err != nil {
		c.fail(malformed())
		return
	}
	var n int64
	switch {
	case req.Input.InvokeModel != nil:
		n = inputTokens(req.Input.InvokeModel.Body, decodeObject(req.Input.InvokeModel.Body))
	case len(req.Input.Converse) > 0:
		doc := decodeObject(req.Input.Converse)
		if doc == nil {
			c.fail(malformed())
			return
		}
		n = inputTokens(req.Input.Converse, doc)
	default:
		c.fail(bedrock.Validation("input must contain exactly one of invokeModel or converse."))
		return
	}
	c.writeJSON(struct {
		InputTokens int64 `json:"inputTokens"`
	}{n})
}

func (c *call) applyGuardrail() {
	if decodeObject(c.body) == nil {
		c.fail(malformed())
		return
	}
	type usage struct {
		TopicPolicyUnits                    int `json:"topicPolicyUnits"`
		ContentPolicyUnits                  int `json:"contentPolicyUnits"`
		WordPolicyUnits                     int `json:"wordPolicyUnits"`
		SensitiveInformationPolicyUnits     int `json:"sensitiveInformationPolicyUnits"`
		SensitiveInformationPolicyFreeUnits int `json:"sensitiveInformationPolicyFreeUnits"`
		ContextualGroundingPolicyUnits      int `json:"contextualGroundingPolicyUnits"`
	}
	c.writeJSON(struct {
		Usage       usage  `json:"usage"`
		Action      string `json:"action"`
		Outputs     []any  `json:"outputs"`
		Assessments []any  `json:"assessments"`
	}{Usage: usage{TopicPolicyUnits: 1, ContentPolicyUnits: 1, WordPolicyUnits: 1}, Action: "NONE", Outputs: []any{}, Assessments: []any{}})
}
