package sim

import (
	"fmt"
	"strconv"
	"strings"
)

// Help describes the simulator's behaviour for `gateway sim --help`.
func Help() string {
	return `The Bedrock simulator answers every Bedrock Runtime operation the way
bedrock-runtime does on the wire (JSON shapes, headers, event streams, error shapes),
plus GET /foundation-models and GET /foundation-models/{id} from a small catalog.

Token counts (deterministic):
  input   words (whitespace-separated) of all prompt text: system and messages[].content
          text (Converse, Anthropic, Nova), inputText (Titan), prompt (Llama, Mistral,
          others), texts (Cohere embeddings); a non-JSON body counts len(body)/4; min 1
  output  --output-tokens (default ` + strconv.Itoa(DefaultOutputTokens) + `) or X-Sim-Output-Tokens, capped by the
          request's maximum (Converse inferenceConfig.maxTokens, max_tokens,
          textGenerationConfig.maxTokenCount, max_gen_len, inferenceConfig.max_new_tokens);
          0 for embedding models (model ID containing "embed")
  text    that many words of "lorem ipsum ...", one word per stream delta event

Per-request headers:
  X-Sim-Fault: <fault>             inject a fault (overrides the fault rate)
  X-Sim-Output-Tokens: N           output tokens (still capped by the request's maximum)
  X-Sim-Cache-Read-Tokens: N       cache read input tokens to report
  X-Sim-Cache-Write-Tokens: N      cache write input tokens to report
  X-Sim-Latency: <duration>        wait before the response headers, e.g. 200ms
  X-Sim-Event-Delay: <duration>    wait between stream events

Faults:
  throttle      429 ThrottlingException
  internal      500 InternalServerException
  unavailable   503 ServiceUnavailableException
  timeout       408 ModelTimeoutException
  model-error   424 ModelErrorException
  midstream     streams: 200, a few events, then an internalServerException frame
                before any usage; other operations: as internal
  reset         the connection is dropped without a response (streams: after a few
                events; the body then ends without its final chunk, which a proxy
                reads as io.ErrUnexpectedEOF but the Go SDK, over HTTP/1.1, as the end)

Async invocations are kept in memory: InProgress until the first GetAsyncInvoke, then
Completed.

STS: GetCallerIdentity (AWS Query protocol: POST form or GET query to "/", with
Action=GetCallerIdentity) answers who signed the request, so IAM identity tokens
(presigned GetCallerIdentity URLs) can be minted and checked locally. SigV4 for
service "sts", in the Authorization header or presigned in the query, is verified
against these built-in identities (simulator only, secrets public):
` + stsHelp() + `Refusals: unknown key or wrong session token 403 InvalidClientTokenId; bad
signature, or signed more than 15 minutes ago (presigned: X-Amz-Expires, at most
15 minutes) or ahead, 403 SignatureDoesNotMatch; malformed signature 400.

AWS Organizations (JSON 1.1, X-Amz-Target: AWSOrganizationsV20161128.<Operation>,
signed for service organizations in us-east-1 with the hub key): DescribeOrganization,
ListRoots, ListOrganizationalUnitsForParent, ListAccountsForParent, ListTagsForResource,
DescribeAccount and ListParents, from the organization of --organization FILE (a state
file; without it: AWSOrganizationsNotInUseException). The hub is the management
account, listed under the root; every account is ACTIVE and tagged team=<team> when
the file names its team. Pages hold at most 20 (MaxResults), NextToken continues.
Faults (X-Sim-Fault, --fault at --fault-rate) strike these calls too: throttle is
400 TooManyRequestsException (which the SDKs retry), unavailable 503 and the others 500
ServiceException, reset drops the connection.

Bedrock control plane, application inference profiles (REST-JSON, signed for service
bedrock with the hub key, as aws bedrock ... --endpoint-url and the SDKs send them):
CreateInferenceProfile (modelSource.copyFrom a foundation-model or system inference
profile ARN, tags), GetInferenceProfile, ListInferenceProfiles (type APPLICATION; pages
of ` + strconv.Itoa(DefaultProfilePageSize) + ` unless maxResults says otherwise, nextToken continues),
DeleteInferenceProfile, TagResource, UntagResource and ListTagsForResource, held in
memory. Profiles belong to account ` + HubAccount + ` in the region the request was signed for.
A profile's ARN or ID is a model ID of the runtime operations: it answers as the model it
copies, and its usage is counted under the ID the caller used.

CloudWatch (Smithy RPC v2 CBOR, as the current SDKs speak it: POST
/service/GraniteServiceVersion20100801/operation/<Operation>, signed for service
monitoring in any region with the hub key): PutMetricData (stored, per region, at
one-minute resolution; gzip bodies accepted), GetMetricData (MetricStat queries with
Sum, SampleCount, Average, Minimum or Maximum over periods that are multiples of 60
seconds counted from StartTime; MaxDatapoints a page, NextToken continues) and
ListMetrics (500 a page). The namespace AWS/Bedrock holds the simulator's own metrics
of what its runtime served (Invocations, InputTokenCount, OutputTokenCount per ModelId,
the model label of the call), in the region the call was signed for (us-east-1 when
unsigned or a bearer token). Faults strike these calls too: throttle is 400 Throttling,
unavailable 503, the others 500 InternalServiceError, reset drops the connection.
`
}

// stsHelp lists the built-in STS identities, one block each.
func stsHelp() string {
	var b strings.Builder
	for _, id := range Identities() {
		fmt.Fprintf(&b, "  %s\n    AWS_ACCESS_KEY_ID=%s AWS_SECRET_ACCESS_KEY=%s", id.Arn, id.AccessKeyID, id.SecretAccessKey)
		if id.SessionToken != "" {
			fmt.Fprintf(&b, "\n    AWS_SESSION_TOKEN=%s", id.SessionToken)
		}
		b.WriteString("\n")
	}
	return b.String()
}
