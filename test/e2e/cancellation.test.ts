// A client that goes away stops the worker at once, and what was generated until then is still metered; a request
// that outlives the gateway's deadline is cancelled the same way and answered with a 504-class error.
import t from "tap";
import { openapiErrors } from "../support/openapi.js";
import { DEFAULT_CATALOGUE, startStack, type Stack } from "../support/stack.js";
import { rawRequest } from "../support/client.js";

const longContext = DEFAULT_CATALOGUE.replace("context_length: 512", "context_length: 4096");
const LONG = {
  model: "tiny-chat",
  messages: [{ role: "user", content: "Go on forever." }],
  max_tokens: 4000,
};

async function cancelledRow(stack: Stack, requestId: string) {
  const row = await stack.waitForUsage(requestId);
  return row;
}

void t.test("closing the stream stops the worker; the partial usage is metered", async (t) => {
  const stack = await startStack({ catalogue: longContext });
  t.teardown(() => stack.stop());
  const controller = new AbortController();
  const response = await fetch(`${stack.baseURL}/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${stack.apiKey}`, "content-type": "application/json" },
    body: JSON.stringify({ ...LONG, stream: true }),
    signal: controller.signal,
  });
  t.equal(response.status, 200);
  const requestId = response.headers.get("x-request-id") ?? "";
  const body = response.body;
  if (!body) throw new Error("no response body");
  const reader: ReadableStreamDefaultReader<Uint8Array> = body.getReader();
  const decoder = new TextDecoder();
  let received = 0;
  let firstAt = 0;
  let text = "";
  // Read until a few dozen content chunks have arrived, so the generation rate can be measured in this run.
  while (received < 40) {
    const { value, done } = await reader.read();
    if (done) break;
    text += decoder.decode(value, { stream: true });
    const events = text.split("\n\n");
    text = events.pop() ?? "";
    for (const event of events)
      if (event.includes('"content":"') && !event.includes('"content":""')) received++;
    if (received === 1) firstAt = performance.now();
  }
  const closedAt = performance.now();
  const closedAtWall = Date.now();
  controller.abort();
  const ratePerMs = (received - 1) / (closedAt - firstAt);

  const row = await cancelledRow(stack, requestId);
  t.equal(row.status, "cancelled");
  t.ok(
    row.completion_tokens >= received,
    `the ${received} tokens the client saw are metered (${row.completion_tokens})`,
  );
  t.ok(row.completion_tokens < 4000, "generation stopped long before max_tokens");
  // How fast the worker stops is a figure, not an assertion (timed assertions flake on a shared machine):
  // bench/cancel-latency.ts measures it over many runs.
  const extra = row.completion_tokens - received;
  const stopLatencyMs = new Date(row.finished_at).getTime() - closedAtWall;
  t.comment(
    `worker stopped ${stopLatencyMs} ms after the client closed, ${extra} tokens later ` +
      `(${(ratePerMs * 1000).toFixed(0)} tokens/s reached the client)`,
  );
});

void t.test("a non-streamed request abandoned by its client is cancelled too", async (t) => {
  const stack = await startStack({ catalogue: longContext });
  t.teardown(() => stack.stop());
  const controller = new AbortController();
  const pending = fetch(`${stack.baseURL}/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${stack.apiKey}`, "content-type": "application/json" },
    body: JSON.stringify(LONG),
    signal: controller.signal,
  }).catch((error: unknown) => error);
  await new Promise((resolve) => setTimeout(resolve, 200));
  controller.abort();
  await pending;
  const deadline = Date.now() + 10_000;
  let rows: Array<{ status: string; completion_tokens: number }> = [];
  while (rows.length === 0 && Date.now() < deadline) {
    rows = await stack.db.selectFrom("usage_events").select(["status", "completion_tokens"]).execute();
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  t.equal(rows[0]?.status, "cancelled");
  t.ok((rows[0]?.completion_tokens ?? 4000) < 4000);
});

void t.test("past REQUEST_TIMEOUT_MS the request is cancelled with a 504", async (t) => {
  const stack = await startStack({ catalogue: longContext, gatewayEnv: { REQUEST_TIMEOUT_MS: "50" } });
  t.teardown(() => stack.stop());
  const response = await rawRequest(stack, "/chat/completions", { body: JSON.stringify(LONG) });
  t.equal(response.status, 504, response.text);
  t.same(openapiErrors("ErrorResponse", response.json), []);
  t.equal((response.json as { error: { code: string } }).error.code, "timeout");
  const requestId = response.headers.get("x-request-id") ?? "";
  const row = await stack.waitForUsage(requestId);
  t.equal(row.status, "cancelled");

  const streamed = await rawRequest(stack, "/chat/completions", {
    body: JSON.stringify({ ...LONG, stream: true }),
  });
  t.equal(streamed.status, 200, "a stream has already started when the deadline passes");
  const last = streamed.text.trim().split("\n\n").at(-1) ?? "";
  t.match(last, /"code":"timeout"/, "the stream ends with the timeout error");
});
