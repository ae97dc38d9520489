// Package sim owns the Bedrock Runtime simulator: an http.Handler that answers every
// operation the gateway routes the way bedrock-runtime does on the wire (status codes,
// headers, JSON shapes, event-stream framing), with deterministic token counts, so the
// official SDK clients can talk to it and tests can compare what the gateway metered
// with what the simulator reported (Totals). It runs in-process behind httptest in
// tests and as `gateway sim` on a port.
//
// # Token counts
//
// Input tokens are the number of whitespace-separated words in all text the request
// carries, at least 1: the strings and `text` members under "system" and
// "messages[].content" (Converse, Anthropic, Nova), "inputText" (Titan), "prompt"
// (Llama, Mistral and others) and "texts" (Cohere embeddings). A body that is not JSON
// counts len(body)/4, at least 1.
//
// Output tokens are the OutputTokens option (default 24) or the X-Sim-Output-Tokens
// header, capped by the maximum the request asks for (Converse
// inferenceConfig.maxTokens, Anthropic and others max_tokens, Titan
// textGenerationConfig.maxTokenCount, Llama max_gen_len, Nova
// inferenceConfig.max_new_tokens). Embedding models (model ID containing "embed")
// produce 0. The generated text is that many words of "lorem ipsum ...", one word per
// stream delta event; the stop reason is max_tokens (or the family's equivalent) when
// the request's cap cut the output short.
//
// Cache read and write tokens are 0 unless set per request by X-Sim-Cache-Read-Tokens
// and X-Sim-Cache-Write-Tokens. Converse totalTokens includes them, as Bedrock's does.
//
// # What counts as reported
//
// Totals sums the usage of the generating operations (InvokeModel,
// InvokeModelWithResponseStream, Converse, ConverseStream,
// InvokeModelWithBidirectionalStream) whose final usage reached the client: the response body or headers of a non-streaming call, or the event carrying
// the final usage of a stream (message_delta for Anthropic, metadata for ConverseStream,
// the last chunk otherwise). A stream that fails or is reset before that event, or whose
// client went away, reports nothing. CountTokens reports a count, not consumption.
//
// # Faults
//
// X-Sim-Fault (or Options.FaultRate with Options.Fault) injects one of Faults(). The
// error faults answer before any header, in Bedrock's error shape. "midstream" sends a
// few events of a stream, then an internalServerException frame. "reset" drops the
// connection without a response; on a stream, after a few events, the handler aborts
// with http.ErrAbortHandler, so an HTTP/1.1 body ends without its final chunk: a proxy
// reading it gets io.ErrUnexpectedEOF, while the Go SDK takes that for the end of the
// stream (it maps io.ErrUnexpectedEOF to io.EOF), so only the missing metadata shows.
//
// # STS
//
// Requests to "/" with an Action (query, or a form POST) go to an STS stand-in
// (sts.go) that answers GetCallerIdentity in the AWS Query protocol, so IAM
// identity tokens (presigned GetCallerIdentity URLs) can be minted and checked
// without AWS. It verifies SigV4 for service "sts", from the Authorization header or
// a presigned query (authn.ParseSigV4), against Identities(): one IAM user and one
// assumed-role session (whose requests must carry its fixed session token) in each
// member account of the example organization. Like STS it accepts a signature 15
// minutes either side of its clock and a presigned URL for at most 15 minutes
// (less when X-Amz-Expires says so). STS calls are not Bedrock requests: they are
// not in Requests() and Options.Verify does not apply to them.
//
// # CloudWatch
//
// Calls to CloudWatchPathPrefix go to a CloudWatch stand-in (cloudwatch.go)
// speaking Smithy RPC v2 CBOR: PutMetricData is stored, GetMetricData and
// ListMetrics answer from it and from the AWS/Bedrock metrics of what the
// runtime served (ModelUsage: Invocations, InputTokenCount and
// OutputTokenCount per ModelId and region). Options.VerifyCloudWatch checks
// their signatures (service monitoring).
package sim
