// The worker's usage outbox against a real NATS server, reached through a TCP proxy the test can cut: events
// enqueued while NATS is away stay in memory and reach the stream, once each, when it comes back.
import { randomBytes } from "node:crypto";
import { Writable } from "node:stream";
import t, { type Test } from "tap";
import { Bus, ensureStream } from "@llmaas/bus";
import { usageStream, type UsageEvent } from "@llmaas/contracts";
import { createLogger } from "@llmaas/telemetry";
import { connectTestBus, silentLogger } from "../../../test/support/bus.js";
import { testEnv } from "../../../test/support/env.js";
import { startTcpProxy } from "../../../test/support/tcp-proxy.js";
import { UsageOutbox } from "../src/outbox.js";

interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

function recordingLogger() {
  const lines: LogLine[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString().split("\n")) if (line) lines.push(JSON.parse(line) as LogLine);
      callback();
    },
  });
  return { lines, logger: createLogger({ service: "t", instanceId: "t", level: "info", destination }) };
}

let sequence = 0;
function usageEvent(): UsageEvent {
  const now = new Date().toISOString();
  return {
    version: 2,
    requestId: `chatcmpl-${randomBytes(6).toString("hex")}-${sequence++}`,
    organizationId: "org-test",
    projectId: "proj-test",
    keyId: "key-test",
    endUser: null,
    model: "tiny-chat",
    operation: "chat.completions",
    promptTokens: 12,
    completionTokens: 34,
    audioSeconds: 0,
    screenedInputs: 0,
    status: "completed",
    servedBy: "llm-worker-test",
    startedAt: now,
    finishedAt: now,
  };
}

async function until(what: string, check: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * A namespace with its usage stream, a direct bus to read the stream, and a bus that reaches NATS through a proxy
 * the test can cut; the namespace's streams are deleted at the end of the test.
 */
async function setUp(t: Test) {
  const direct = await connectTestBus();
  const stream = await ensureStream(direct.bus, usageStream);
  const nats = new URL(testEnv.NATS_URL);
  const proxy = await startTcpProxy(nats.hostname, Number(nats.port || 4222));
  const proxied = await Bus.connect({
    servers: `127.0.0.1:${proxy.port}`,
    name: "usage-outbox-test",
    logger: silentLogger,
    namespace: direct.namespace,
  });
  t.teardown(async () => {
    proxy.restore();
    await proxied.nc.close();
    await proxy.close();
    await direct.close();
  });
  const jsm = await direct.bus.js.jetstreamManager();
  /** Request id → how many times the stream holds its event. */
  const stored = async (): Promise<Map<string, number>> => {
    const counts = new Map<string, number>();
    const { state } = await jsm.streams.info(stream);
    for (let seq = state.first_seq; state.messages > 0 && seq <= state.last_seq; seq++) {
      const message = await jsm.streams.getMessage(stream, { seq });
      if (!message) continue;
      const { requestId } = message.json<UsageEvent>();
      if (message.header.get("Nats-Msg-Id") !== requestId)
        t.fail(`${requestId}: the message id is not the request id`);
      counts.set(requestId, (counts.get(requestId) ?? 0) + 1);
    }
    return counts;
  };
  return { proxy, proxied, stored };
}

void t.test(
  "events enqueued while NATS is unreachable wait in memory, then are stored once each",
  async (t) => {
    const { proxy, proxied, stored } = await setUp(t);
    const { lines, logger } = recordingLogger();
    const outbox = new UsageOutbox({ bus: proxied, logger, initialBackoffMs: 50, maxBackoffMs: 400 });

    const before = usageEvent();
    outbox.enqueue(before);
    await until("the first event is acknowledged", () => outbox.pending === 0);

    // Counts the attempts, to see that retries go on while NATS is away.
    let attempts = 0;
    const publishDurable = proxied.publishDurable.bind(proxied);
    proxied.publishDurable = (...args) => {
      attempts++;
      return publishDurable(...args);
    };

    proxy.cut();
    const events = Array.from({ length: 20 }, usageEvent);
    const started = performance.now();
    for (const event of events) outbox.enqueue(event);
    t.ok(performance.now() - started < 50, "enqueue returns at once, NATS or not");
    t.equal(outbox.pending, 20);
    // An attempt waits for JetStream's acknowledgement until the client's timeout (5 s) before it counts as failed.
    await until("a third round of attempts", () => attempts > 40);
    t.equal(outbox.pending, 20, "still pending after failed retries: nothing is given up");
    t.same([...(await stored()).keys()], [before.requestId], "none reached the stream");
    const warnings = lines.filter((line) => line.level === 40);
    t.equal(warnings.length, 1, "one warning when publishing starts failing, not one per retry");
    t.match(warnings[0], { msg: /cannot be published; keeping them in memory/, pending: 20 });

    proxy.restore();
    await until("every event is acknowledged once NATS is back", () => outbox.pending === 0);
    const counts = await stored();
    t.same(
      [...counts.keys()].sort(),
      [before, ...events].map((event) => event.requestId).sort(),
      "every event is in the stream",
    );
    t.ok(
      [...counts.values()].every((count) => count === 1),
      "each exactly once, however often it was retried",
    );
    t.equal(lines.filter((line) => line.level === 40).length, 1, "still one warning");
    t.match(
      lines.filter((line) => line.level === 30),
      [{ msg: "usage events are being published again", failedForMs: Number }],
      "one line when it recovers",
    );
    t.equal(await outbox.drain(1_000), 0, "nothing left at shutdown");
    t.notOk(
      lines.some((line) => line.level >= 50),
      "no error logged",
    );
  },
);

void t.test("an event published twice is stored once: its request id is the message id", async (t) => {
  const { proxied, stored } = await setUp(t);
  const outbox = new UsageOutbox({ bus: proxied, logger: silentLogger });
  const event = usageEvent();
  outbox.enqueue(event);
  outbox.enqueue({ ...event });
  t.equal(outbox.pending, 1, "enqueued twice before it was published, kept once");
  await until("acknowledged", () => outbox.pending === 0);
  outbox.enqueue({ ...event });
  t.equal(outbox.pending, 1, "enqueued again after it was published");
  await until("acknowledged again", () => outbox.pending === 0);
  t.same(await stored(), new Map([[event.requestId, 1]]), "JetStream dropped the duplicate");
  await outbox.drain(1_000);
});

void t.test("at shutdown, what cannot be published is logged by id and counts", async (t) => {
  const { proxy, proxied } = await setUp(t);
  const { lines, logger } = recordingLogger();
  const outbox = new UsageOutbox({ bus: proxied, logger, initialBackoffMs: 50, maxBackoffMs: 100 });
  proxy.cut();
  const events = [usageEvent(), usageEvent()];
  for (const event of events) outbox.enqueue(event);
  const started = Date.now();
  t.equal(await outbox.drain(500), 2, "both left");
  t.ok(Date.now() - started < 2_000, "drain keeps to its time limit");
  const errors = lines.filter((line) => line.level === 50);
  t.equal(errors.length, 1);
  t.match(errors[0], {
    msg: "usage events could not be published before shutdown",
    unpublished: 2,
    usage: events.map((event) => ({
      requestId: event.requestId,
      organizationId: "org-test",
      projectId: "proj-test",
      keyId: "key-test",
      model: "tiny-chat",
      promptTokens: 12,
      completionTokens: 34,
    })),
  });

  outbox.enqueue(usageEvent());
  t.equal(outbox.pending, 2, "a drained outbox takes no more events");
  t.match(lines.at(-1), { level: 50, msg: /after shutdown; it was not published/ }, "and says so");
});

void t.test("an event the schema refuses is logged, not retried forever", async (t) => {
  const { proxied } = await setUp(t);
  const { lines, logger } = recordingLogger();
  const outbox = new UsageOutbox({ bus: proxied, logger });
  outbox.enqueue({ ...usageEvent(), promptTokens: -1 });
  t.equal(outbox.pending, 0);
  t.match(lines, [
    { level: 50, msg: "invalid usage event; it was not published", problems: [/^promptTokens: /] },
  ]);
  await outbox.drain(100);
});
