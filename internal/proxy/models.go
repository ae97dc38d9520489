package proxy

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/bedrock-gateway/gateway/internal/authz"
	"github.com/bedrock-gateway/gateway/internal/bedrock"
)

// modelSummary is the control-plane FoundationModelSummary shape.
type modelSummary struct {
	ModelArn                   string         `json:"modelArn"`
	ModelID                    string         `json:"modelId"`
	ModelName                  string         `json:"modelName,omitempty"`
	ProviderName               string         `json:"providerName,omitempty"`
	InputModalities            []string       `json:"inputModalities"`
	OutputModalities           []string       `json:"outputModalities"`
	ResponseStreamingSupported bool           `json:"responseStreamingSupported"`
	CustomizationsSupported    []string       `json:"customizationsSupported"`
	InferenceTypesSupported    []string       `json:"inferenceTypesSupported"`
	ModelLifecycle             map[string]any `json:"modelLifecycle"`
}

func (h *Handler) summary(e *authz.Entitlement) modelSummary {
	region := e.Region
	if region == "" {
		region = h.opts.Region
	}
	provider := ""
	if id, err := bedrock.ParseModelID(e.Model); err == nil {
		provider = id.Provider()
	}
	out := []string{"TEXT"}
	if strings.Contains(e.Model, "embed") {
		out = []string{"EMBEDDING"}
	}
	name := e.Description
	if name == "" {
		name = e.Name
	}
	return modelSummary{
		ModelArn:                   "arn:aws:bedrock:" + region + "::foundation-model/" + e.Name,
		ModelID:                    e.Name,
		ModelName:                  name,
		ProviderName:               provider,
		InputModalities:            []string{"TEXT"},
		OutputModalities:           out,
		ResponseStreamingSupported: e.Allows(bedrock.OpConverseStream) || e.Allows(bedrock.OpInvokeModelWithResponseStream),
		CustomizationsSupported:    []string{},
		InferenceTypesSupported:    []string{"ON_DEMAND"},
		ModelLifecycle:             map[string]any{"status": "ACTIVE"},
	}
}

// listModels answers GET /foundation-models with exactly the caller's entitlements.
func (h *Handler) listModels(w *responseWriter, r *http.Request, c *call, snap *authz.Snapshot) error {
	q := r.URL.Query()
	byProvider := strings.ToLower(q.Get("byProvider"))
	byOutput := strings.ToUpper(q.Get("byOutputModality"))
	byInference := strings.ToUpper(q.Get("byInferenceType"))
	byCustomization := q.Get("byCustomizationType")
	summaries := []modelSummary{}
	for _, e := range snap.EntitlementsAs(c.account.ID, c.principal()) {
		s := h.summary(e)
		if byProvider != "" && strings.ToLower(s.ProviderName) != byProvider {
			continue
		}
		if byOutput != "" && (len(s.OutputModalities) == 0 || s.OutputModalities[0] != byOutput) {
			continue
		}
		if byInference != "" && byInference != "ON_DEMAND" {
			continue
		}
		if byCustomization != "" {
			continue // entitlements cannot be customized
		}
		summaries = append(summaries, s)
	}
	return writeJSON(w, c, map[string]any{"modelSummaries": summaries})
}

// getModel answers GET /foundation-models/{id} for an entitlement the caller may use.
func (h *Handler) getModel(w *responseWriter, c *call, snap *authz.Snapshot) error {
	id := c.route.ModelID
	if i := strings.Index(id, ":foundation-model/"); i >= 0 && strings.HasPrefix(id, "arn:") {
		id = id[i+len(":foundation-model/"):]
	}
	for _, e := range snap.EntitlementsAs(c.account.ID, c.principal()) {
		if e.Name == id {
			w.Header().Set("X-Gateway-Entitlement", e.Name)
			return writeJSON(w, c, map[string]any{"modelDetails": h.summary(e)})
		}
	}
	c.denyReason = string(authz.DenyNotShared)
	return bedrock.AccessDenied(deniedMessage)
}

func writeJSON(w *responseWriter, c *call, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Amzn-Requestid", c.requestID)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
	return nil
}
