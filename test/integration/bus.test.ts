// The bus validates both ways, carries errors as code + message, maps NATS failures to platform errors, and
// carries W3C trace context in the message headers.
import t from "tap";
import { z } from "zod";
import { InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace";
import { startTelemetry } from "@llmaas/telemetry";
import { authAuthenticate, llmChat, PlatformError } from "@llmaas/contracts";
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
  const principal = {
    kind: "api_key",
    organizationId: "org_1",
    projectId: "proj_1",
    keyId: "key_1",
    serviceAccountId: "svc_acct_1",
    allowedModels: null,
    validUntil: null,
    limits: {
      key: { maxRequestsPer1Minute: null, maxTokensPer1Minute: null, tokenBudget: null },
      projectModels: {},
      projectSpendLimitCents: null,
      organizationSpendLimitCents: null,
      projectModelPermissions: null,
    },
    guardrail: { mode: "block", threshold: 0.5, onTimeout: "allow" },
  } as const;
  const subscription = bus.serve(authAuthenticate, authAuthenticate.subject, async ({ credential }, ctx) => {
    traceparent = ctx.headers?.get("traceparent");
    if (credential === "good") return principal;
    throw new PlatformError("invalid_api_key", "Incorrect API key provided.");
  });
  t.teardown(() => subscription.unsubscribe());
  const authenticate = (credential: string, timeoutMs = 2000) =>
    bus.request(
      authAuthenticate,
      authAuthenticate.subject,
      { credential, organizationHint: null, client: { ip: "127.0.0.1", userAgent: null } },
      { timeoutMs },
    );

  t.same(await authenticate("good"), principal);
  t.match(traceparent, /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/, "traceparent header sent");

  const spans = exporter.getFinishedSpans();
  const client = spans.find((span) => span.name === "auth.v1.authenticate request");
  const server = spans.find((span) => span.name === "auth.v1.authenticate process");
  t.ok(client && server, "a client and a server span");
  t.equal(server?.spanContext().traceId, client?.spanContext().traceId, "one trace");
  t.equal(
    server?.parentSpanContext?.spanId,
    client?.spanContext().spanId,
    "the server span is the client's child",
  );

  const refused = await authenticate("bad").catch((error: unknown) => error);
  t.ok(refused instanceof PlatformError);
  t.equal((refused as PlatformError).code, "invalid_api_key", "the handler's error code crosses the bus");
});

void t.test("an invalid payload is refused before it is sent", async (t) => {
  await t.rejects(
    bus.request(
      authAuthenticate,
      authAuthenticate.subject,
      { credential: "", organizationHint: null, client: { ip: "127.0.0.1", userAgent: null } },
      { timeoutMs: 500 },
    ),
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
        principal: { organizationId: "o", projectId: "p", keyId: "k" },
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
