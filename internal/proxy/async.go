package proxy

import (
	"encoding/json"

	"github.com/bedrock-gateway/gateway/internal/bedrock"
)

// asyncModelID reads modelId from a StartAsyncInvoke body.
func asyncModelID(body []byte) (string, error) {
	var req struct {
		ModelID string `json:"modelId"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return "", bedrock.Validation("The request body is not valid JSON.")
	}
	if req.ModelID == "" {
		return "", bedrock.Validation("1 validation error detected: Value null at 'modelId' failed to satisfy constraint: Member must not be null")
	}
	return req.ModelID, nil
}

// rewriteAsyncModelID substitutes the entitlement's upstream model into the body,
// keeping every other member as sent.
func rewriteAsyncModelID(body []byte, model string) ([]byte, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, bedrock.Validation("The request body is not valid JSON.")
	}
	id, err := json.Marshal(model)
	if err != nil {
		return nil, err
	}
	m["modelId"] = id
	return json.Marshal(m)
}
