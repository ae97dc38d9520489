// Mints an IAM identity token with the README's JavaScript recipe (mint.mjs,
// copied from README.md by the Go test) and calls Converse with it through
// the client's token provider. Prints one JSON line for the Go test.
import { BedrockRuntimeClient, ConverseCommand } from "@aws-sdk/client-bedrock-runtime";
import { mintToken } from "./mint.mjs";

const out = { mints: 0 };
try {
  const client = new BedrockRuntimeClient({
    region: "us-east-1",
    endpoint: process.env.GATEWAY_ENDPOINT,
    maxAttempts: 1,
    authSchemePreference: ["httpBearerAuth"],
    token: async () => {
      out.mints++;
      const token = await mintToken(process.env.GATEWAY_ID, "us-east-1", process.env.STS_ENDPOINT);
      return { token, expiration: new Date(Date.now() + 14 * 60_000) };
    },
  });
  const messages = [{ role: "user", content: [{ text: "hello from javascript with an IAM identity" }] }];
  for (let i = 0; i < 2; i++) {
    const c = await client.send(new ConverseCommand({ modelId: process.env.MODEL, messages, inferenceConfig: { maxTokens: 6 } }));
    out.outputTokens = (out.outputTokens ?? 0) + c.usage.outputTokens;
  }
} catch (e) {
  out.error = `${e.name}: ${e.message}`;
}
console.log(JSON.stringify(out));
