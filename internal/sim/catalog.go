package sim

import (
	"strings"

	"github.com/bedrock-gateway/gateway/internal/bedrock"
)

// ModelSummary is a control-plane foundation model summary (GET /foundation-models).
type ModelSummary struct {
	ModelArn                   string         `json:"modelArn"`
	ModelID                    string         `json:"modelId"`
	ModelName                  string         `json:"modelName"`
	ProviderName               string         `json:"providerName"`
	InputModalities            []string       `json:"inputModalities"`
	OutputModalities           []string       `json:"outputModalities"`
	ResponseStreamingSupported bool           `json:"responseStreamingSupported"`
	CustomizationsSupported    []string       `json:"customizationsSupported"`
	InferenceTypesSupported    []string       `json:"inferenceTypesSupported"`
	ModelLifecycle             modelLifecycle `json:"modelLifecycle"`
}

type modelLifecycle struct {
	Status string `json:"status"`
}

// Catalog returns the simulator's built-in foundation models (ARNs in us-east-1).
func Catalog() []ModelSummary {
	m := func(id, name, provider string, in, out []string, stream bool, inference string) ModelSummary {
		return ModelSummary{
			ModelArn: "arn:aws:bedrock:us-east-1::foundation-model/" + id, ModelID: id,
			ModelName: name, ProviderName: provider, InputModalities: in, OutputModalities: out,
			ResponseStreamingSupported: stream, CustomizationsSupported: []string{},
			InferenceTypesSupported: []string{inference}, ModelLifecycle: modelLifecycle{"ACTIVE"},
		}
	}
	text := []string{"TEXT"}
	return []ModelSummary{
		m("anthropic.claude-3-5-haiku-20241022-v1:0", "Claude 3.5 Haiku", "Anthropic", text, text, true, "INFERENCE_PROFILE"),
		m("anthropic.claude-3-haiku-20240307-v1:0", "Claude 3 Haiku", "Anthropic", []string{"TEXT", "IMAGE"}, text, true, "ON_DEMAND"),
		m("amazon.nova-lite-v1:0", "Nova Lite", "Amazon", []string{"TEXT", "IMAGE", "VIDEO"}, text, true, "ON_DEMAND"),
		m("amazon.titan-text-express-v1", "Titan Text G1 - Express", "Amazon", text, text, true, "ON_DEMAND"),
		m("amazon.titan-embed-text-v2:0", "Titan Text Embeddings V2", "Amazon", text, []string{"EMBEDDING"}, false, "ON_DEMAND"),
		m("meta.llama3-8b-instruct-v1:0", "Llama 3 8B Instruct", "Meta", text, text, true, "ON_DEMAND"),
		m("mistral.mistral-7b-instruct-v0:2", "Mistral 7B Instruct", "Mistral AI", text, text, true, "ON_DEMAND"),
	}
}

func containsFold(list []string, v string) bool {
	for _, s := range list {
		if strings.EqualFold(s, v) {
			return true
		}
	}
	return false
}

func (c *call) listFoundationModels() {
	q := c.r.URL.Query()
	out := []ModelSummary{}
	for _, m := range Catalog() {
		if p := q.Get("byProvider"); p != "" && !strings.EqualFold(p, m.ProviderName) {
			continue
		}
		if o := q.Get("byOutputModality"); o != "" && !containsFold(m.OutputModalities, o) {
			continue
		}
		if t := q.Get("byInferenceType"); t != "" && !containsFold(m.InferenceTypesSupported, t) {
			continue
		}
		out = append(out, m)
	}
	c.writeJSON(struct {
		ModelSummaries []ModelSummary `json:"modelSummaries"`
	}{out})
}

func (c *call) getFoundationModel() {
	id := c.route.ModelID
	for _, m := range Catalog() {
		if id == m.ModelID || id == m.ModelArn ||
			strings.HasPrefix(id, "arn:") && strings.HasSuffix(id, ":foundation-model/"+m.ModelID) {
			c.writeJSON(struct {
				ModelDetails ModelSummary `json:"modelDetails"`
			}{m})
			return
		}
	}
	c.fail(bedrock.NotFound("The requested model " + id + " was not found."))
}
