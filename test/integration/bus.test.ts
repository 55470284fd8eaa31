// The bus validates both ways, carries errors as code + message, maps NATS failures to platform errors, and
// carries W3C trace context in the message headers.
import t from "tap";
import { z } from "zod";
import { InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace";
import { startTelemetry } from "@llmaas/telemetry";
import { authVerify, llmChat, PlatformError } from "@llmaas/contracts";
import { connectTestBus } from "../support/bus.js";

const exporter = new InMemorySpanExporter();
const telemetry = startTelemetry({
  serviceName: "bus-test",
  instanceId: "bus-test",
  spanProcessors: [new SimpleSpanProcessor({ exporter })],
});
t.teardown(() => telemetry.shutdown());

const { bus, close } = await connectTestBus();
t.teardown(close);

void t.test("request and reply are validated and the trace crosses the bus", async (t) => {
  let traceparent: string | undefined;
  const subscription = bus.serve(authVerify, authVerify.subject, async ({ apiKey }, ctx) => {
    traceparent = ctx.headers?.get("traceparent");
    if (apiKey === "good") return { keyId: "k1", tenantId: "t1" };
    throw new PlatformError("invalid_api_key", "Incorrect API key provided.");
  });
  t.teardown(() => subscription.unsubscribe());

  t.same(await bus.request(authVerify, authVerify.subject, { apiKey: "good" }, { timeoutMs: 2000 }), {
    keyId: "k1",
    tenantId: "t1",
  });
  t.match(traceparent, /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/, "traceparent header sent");

  const spans = exporter.getFinishedSpans();
  const client = spans.find((span) => span.name === "auth.v1.verify request");
  const server = spans.find((span) => span.name === "auth.v1.verify process");
  t.ok(client && server, "a client and a server span");
  t.equal(server?.spanContext().traceId, client?.spanContext().traceId, "one trace");
  t.equal(
    server?.parentSpanContext?.spanId,
    client?.spanContext().spanId,
    "the server span is the client's child",
  );

  const refused = await bus
    .request(authVerify, authVerify.subject, { apiKey: "bad" }, { timeoutMs: 2000 })
    .catch((error: unknown) => error);
  t.ok(refused instanceof PlatformError);
  t.equal((refused as PlatformError).code, "invalid_api_key", "the handler's error code crosses the bus");
});

void t.test("an invalid payload is refused before it is sent", async (t) => {
  await t.rejects(
    bus.request(authVerify, authVerify.subject, { apiKey: "" }, { timeoutMs: 500 }),
    z.ZodError,
  );
});

void t.test("no worker for a model → model_unavailable", async (t) => {
  const error = await bus
    .request(
      llmChat,
      llmChat.forModel("nobody-serves-this"),
      {
        requestId: "r1",
        model: "nobody-serves-this",
        principal: { keyId: "k", tenantId: "t" },
        endUser: null,
        input: {
          kind: "chat",
          messages: [{ role: "user", content: "hi" }],
          tools: [],
          toolChoice: { mode: "none" },
          parallelToolCalls: true,
          output: { type: "text" },
        },
        sampling: {
          maxTokens: 1,
          temperature: null,
          topP: null,
          seed: null,
          stop: [],
          presencePenalty: null,
          frequencyPenalty: null,
        },
        eventsSubject: "llm.v1.events.r1",
      },
      { timeoutMs: 2000 },
    )
    .catch((e: unknown) => e);
  t.equal((error as PlatformError).code, "model_unavailable");
});

void t.test("model ids with dots stay one subject token", async (t) => {
  t.equal(llmChat.forModel("granite-3.1-8b"), "llm.v1.chat.granite-3%2E1-8b");
});
