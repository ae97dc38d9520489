package bedrock

// Usage is the token usage Bedrock reported for one call.
type Usage struct {
	InputTokens      int64 `json:"input_tokens"`
	OutputTokens     int64 `json:"output_tokens"`
	CacheReadTokens  int64 `json:"cache_read_tokens"`
	CacheWriteTokens int64 `json:"cache_write_tokens"`
	// Estimated marks usage Bedrock did not report (a stream that broke, a
	// client gone past the drain timeout, a shutdown): the input estimate plus
	// the output seen, charged and recorded as such.
	Estimated bool `json:"estimated,omitempty"`
	// Failed marks a call whose upstream failed after its response had
	// started (a mid-stream exception or break): settled, and counted as an
	// error in the ledger too.
	Failed bool `json:"failed,omitempty"`
}

// Total is input plus output tokens (cache tokens are reported separately by
// Bedrock and are not part of inputTokens).
func (u Usage) Total() int64 { return u.InputTokens + u.OutputTokens }

// Add returns the sum of u and v.
func (u Usage) Add(v Usage) Usage {
	return Usage{
		InputTokens:      u.InputTokens + v.InputTokens,
		OutputTokens:     u.OutputTokens + v.OutputTokens,
		CacheReadTokens:  u.CacheReadTokens + v.CacheReadTokens,
		CacheWriteTokens: u.CacheWriteTokens + v.CacheWriteTokens,
	}
}
