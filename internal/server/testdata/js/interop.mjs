// Calls the gateway with the official AWS SDK for JavaScript v3, which speaks
// HTTP/2 (h2c on http://) and signs :authority and x-amz-content-sha256.
// Prints one JSON line of results for the Go test to check.
import {
  BedrockRuntimeClient, ConverseCommand, ConverseStreamCommand, InvokeModelCommand,
} from "@aws-sdk/client-bedrock-runtime";

const client = new BedrockRuntimeClient({
  endpoint: process.env.GATEWAY_ENDPOINT,
  region: "us-east-1",
  credentials: { accessKeyId: process.env.MEMBER_AKID, secretAccessKey: process.env.MEMBER_SECRET },
  maxAttempts: 1,
});
const model = process.env.MODEL;
const messages = [{ role: "user", content: [{ text: "hello from javascript" }] }];
const out = {};
try {
  const c = await client.send(new ConverseCommand({ modelId: model, messages, inferenceConfig: { maxTokens: 6 } }));
  out.converse = c.usage;
  const s = await client.send(new ConverseStreamCommand({ modelId: model, messages, inferenceConfig: { maxTokens: 5 } }));
  let deltas = 0;
  for await (const ev of s.stream) {
    if (ev.contentBlockDelta) deltas++;
    if (ev.metadata) out.streamUsage = ev.metadata.usage;
  }
  out.deltas = deltas;
  const body = JSON.stringify({ anthropic_version: "bedrock-2023-05-31", max_tokens: 4, messages: [{ role: "user", content: "hi js" }] });
  const inv = await client.send(new InvokeModelCommand({ modelId: model, body, contentType: "application/json" }));
  out.invoke = JSON.parse(new TextDecoder().decode(inv.body)).usage;
  try {
    await client.send(new ConverseCommand({ modelId: "no-such-entitlement", messages }));
  } catch (e) {
    out.deniedName = e.name;
    out.deniedStatus = e.$metadata?.httpStatusCode;
  }
} catch (e) {
  out.error = `${e.name}: ${e.message}`;
}
console.log(JSON.stringify(out));
