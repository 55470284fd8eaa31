// Usage is never lost and never counted twice: duplicates are dropped by JetStream (Nats-Msg-Id) or by Postgres
// (request id), nothing is acknowledged before it is committed, and what cannot be recorded is dead-lettered, not
// dropped. Each event is priced when recorded, and a later price change rewrites nothing.
import t from "tap";
import { createHash, randomUUID } from "node:crypto";
import { parseCatalogue } from "@llmaas/catalogue";
import {
  meteringStream,
  UsageCommitted,
  UsageDeadLetter,
  usageRecorded,
  usageRecordedV1,
  type UsageEvent,
  type UsageEventV1,
} from "@llmaas/contracts";
import { startMetering, type MeteringOptions } from "@llmaas/metering/app";
import { recordUsage, type PricedUsageEvent } from "@llmaas/metering/record";
import { startRetention } from "@llmaas/metering/retention";
import { createTestDatabase } from "../support/database.js";
import { connectTestBus, silentLogger } from "../support/bus.js";

const database = await createTestDatabase();
t.teardown(() => database.drop());
const { db } = database;

const catalogueAt = (inputPerMillion: string, outputPerMillion: string) =>
  parseCatalogue(
    `
models:
  - id: tiny-chat
    owned_by: llmaas
    created: 2026-11-21
    source: /nonexistent/tiny-chat.gguf
    capabilities: [chat, completion]
    context_length: 512
    pricing: { input_per_million: "${inputPerMillion}", output_per_million: "${outputPerMillion}" }
  - id: tiny-whisper
    owned_by: llmaas
    created: 2026-11-21
    source: /nonexistent/tiny-whisper.bin
    capabilities: [audio]
    context_length: 448
    pricing: { audio_per_minute: "0.006" }
`,
    "/",
  );
const catalogue = catalogueAt("0.5", "1.5");
/** Pico-units per token at 0.5 and 1.5 per million: 0.5e-6 and 1.5e-6 of the currency. */
const INPUT_PICO = 500_000n;
const OUTPUT_PICO = 1_500_000n;

function usageEvent(overrides: Partial<UsageEvent> = {}): UsageEvent {
  const now = Date.now();
  return {
    version: 2,
    requestId: `chatcmpl-${randomUUID()}`,
    organizationId: "org_a",
    projectId: "proj_a",
    keyId: "key-a",
    endUser: null,
    model: "tiny-chat",
    operation: "chat.completions",
    promptTokens: 10,
    completionTokens: 5,
    audioSeconds: 0,
    screenedInputs: 0,
    status: "completed",
    servedBy: "worker-1",
    startedAt: new Date(now - 1000).toISOString(),
    finishedAt: new Date(now).toISOString(),
    ...overrides,
  };
}

function priced(event: UsageEvent): PricedUsageEvent {
  return {
    event,
    currency: "EUR",
    prices: { input: INPUT_PICO, output: OUTPUT_PICO, audio: 0n },
    costs: {
      input: BigInt(event.promptTokens) * INPUT_PICO,
      output: BigInt(event.completionTokens) * OUTPUT_PICO,
      audio: 0n,
    },
  };
}

type AggregateTable = "usage_minute" | "usage_hourly" | "usage_daily";

async function aggregates(table: AggregateTable, keyId: string) {
  return db.selectFrom(table).selectAll().where("key_id", "=", keyId).orderBy("bucket_start").execute();
}

async function eventually<T>(read: () => Promise<T>, done: (value: T) => boolean, what: string): Promise<T> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function startTestMetering(
  bus: MeteringOptions["bus"],
  overrides: Partial<MeteringOptions> = {},
): Promise<ReturnType<typeof startMetering>> {
  return startMetering({
    bus,
    db,
    logger: silentLogger,
    catalogue,
    currency: "EUR",
    batchSize: 10,
    lingerMs: 20,
    retryDelayMs: 100,
    outboxSweepMs: 200,
    ...overrides,
  });
}

/** Every message of the metering stream on `subject`, read with an ordered consumer from the start. */
async function meteringMessages(bus: MeteringOptions["bus"], subject: string): Promise<unknown[]> {
  const consumer = await bus.js.consumers.get(bus.streamName(meteringStream.name), {
    filter_subjects: bus.subject(subject),
  });
  const info = await consumer.info();
  const expected = info.num_pending;
  const messages: unknown[] = [];
  if (expected === 0) return messages;
  const iterator = await consumer.fetch({ max_messages: expected, expires: 2000 });
  for await (const msg of iterator) messages.push(msg.json());
  return messages;
}

void t.test("recordUsage writes events once and folds only the new ones into every aggregate", async (t) => {
  const at = (iso: string) => ({ finishedAt: iso, startedAt: iso });
  const first = usageEvent({ keyId: "key-store", ...at("2026-11-21T10:15:10.000Z"), endUser: "alice" });
  const second = usageEvent({
    keyId: "key-store",
    ...at("2026-11-21T10:15:50.000Z"),
    endUser: "alice",
    promptTokens: 7,
    completionTokens: 3,
  });
  const laterHour = usageEvent({ keyId: "key-store", ...at("2026-11-21T11:00:00.000Z"), endUser: "alice" });
  const laterDay = usageEvent({ keyId: "key-store", ...at("2026-11-22T00:00:00.000Z"), endUser: "alice" });

  const firstRound = await recordUsage(db, [first, second, first].map(priced));
  t.equal(firstRound.recorded, 2, "a duplicate inside the batch is written once");
  t.same(
    firstRound.changes.map((change) => [
      change.minute,
      change.requests,
      change.inputTokens,
      change.inputCostPico,
    ]),
    [["2026-11-21T10:15:00.000Z", 2, 17, String(17n * INPUT_PICO)]],
    "the batch's changes are what it added to the minute row",
  );
  const secondRound = await recordUsage(db, [first, second, laterHour, laterDay].map(priced));
  t.equal(secondRound.recorded, 2, "events recorded before are skipped");
  t.equal((await recordUsage(db, [laterHour].map(priced))).recorded, 0);

  const counts = (rows: Awaited<ReturnType<typeof aggregates>>) =>
    rows.map((row) => [
      new Date(row.bucket_start).toISOString(),
      row.end_user,
      row.requests,
      row.input_tokens,
      row.output_tokens,
      row.input_cost_pico,
      row.output_cost_pico,
    ]);
  const cost = (tokens: number, price: bigint) => String(BigInt(tokens) * price);
  t.same(counts(await aggregates("usage_minute", "key-store")), [
    ["2026-11-21T10:15:00.000Z", "alice", "2", "17", "8", cost(17, INPUT_PICO), cost(8, OUTPUT_PICO)],
    ["2026-11-21T11:00:00.000Z", "alice", "1", "10", "5", cost(10, INPUT_PICO), cost(5, OUTPUT_PICO)],
    ["2026-11-22T00:00:00.000Z", "alice", "1", "10", "5", cost(10, INPUT_PICO), cost(5, OUTPUT_PICO)],
  ]);
  t.same(counts(await aggregates("usage_hourly", "key-store")), [
    ["2026-11-21T10:00:00.000Z", "alice", "2", "17", "8", cost(17, INPUT_PICO), cost(8, OUTPUT_PICO)],
    ["2026-11-21T11:00:00.000Z", "alice", "1", "10", "5", cost(10, INPUT_PICO), cost(5, OUTPUT_PICO)],
    ["2026-11-22T00:00:00.000Z", "alice", "1", "10", "5", cost(10, INPUT_PICO), cost(5, OUTPUT_PICO)],
  ]);
  t.same(counts(await aggregates("usage_daily", "key-store")), [
    ["2026-11-21T00:00:00.000Z", "alice", "3", "27", "13", cost(27, INPUT_PICO), cost(13, OUTPUT_PICO)],
    ["2026-11-22T00:00:00.000Z", "alice", "1", "10", "5", cost(10, INPUT_PICO), cost(5, OUTPUT_PICO)],
  ]);

  const stored = await db
    .selectFrom("usage_events")
    .select(["currency", "input_price_pico", "output_price_pico", "input_cost_pico"])
    .where("request_id", "=", second.requestId)
    .executeTakeFirstOrThrow();
  t.same(stored, {
    currency: "EUR",
    input_price_pico: String(INPUT_PICO),
    output_price_pico: String(OUTPUT_PICO),
    input_cost_pico: cost(7, INPUT_PICO),
  });
});

void t.test("the service consumes JetStream, dedupes, and publishes each commit's changes", async (t) => {
  const { bus, close } = await connectTestBus();
  t.teardown(close);
  const metering = await startTestMetering(bus);
  t.teardown(() => metering.stop());

  const event = usageEvent({ keyId: "key-js", endUser: "bob" });
  // The same message id twice inside the duplicate window: stored once by JetStream.
  await bus.publishDurable(usageRecorded, event, event.requestId);
  await bus.publishDurable(usageRecorded, event, event.requestId);
  // The same request under another message id (a retry outside the window): dropped by Postgres.
  await bus.publishDurable(usageRecorded, event, `${event.requestId}-retry`);
  const other = usageEvent({ keyId: "key-js", endUser: "bob", promptTokens: 1, completionTokens: 1 });
  await bus.publishDurable(usageRecorded, other, other.requestId);

  await eventually(
    () => aggregates("usage_daily", "key-js"),
    (rows) => rows[0]?.requests === "2",
    "two requests in the daily aggregate",
  );
  // Give a wrongly counted duplicate time to show up before asserting it did not.
  await new Promise((resolve) => setTimeout(resolve, 1000));
  for (const table of ["usage_minute", "usage_hourly", "usage_daily"] as const) {
    const rows = await aggregates(table, "key-js");
    t.same(
      [
        rows.reduce((sum, row) => sum + Number(row.requests), 0),
        rows.reduce((sum, row) => sum + Number(row.input_tokens), 0),
      ],
      [2, 11],
      `${table} counts each request once`,
    );
  }

  const committed = await eventually(
    async () =>
      (await meteringMessages(bus, "metering.v1.usage.committed")).map((message) =>
        UsageCommitted.parse(message),
      ),
    (messages) =>
      messages
        .flatMap((m) => m.changes)
        .filter((change) => change.keyId === "key-js")
        .reduce((n, c) => n + c.requests, 0) >= 2,
    "the committed changes on the metering stream",
  );
  const changes = committed
    .flatMap((message) => message.changes)
    .filter((change) => change.keyId === "key-js");
  t.equal(
    changes.reduce((sum, change) => sum + change.requests, 0),
    2,
    "billing consumers see each request once",
  );
  t.equal(
    changes.reduce((sum, change) => sum + BigInt(change.inputCostPico), 0n),
    11n * INPUT_PICO,
  );
  t.equal(changes[0]?.endUser, "bob");
  await eventually(
    () => db.selectFrom("metering_outbox").select("id").execute(),
    (rows) => rows.length === 0,
    "an empty outbox",
  );
});

void t.test(
  "what cannot be recorded is dead-lettered with its reason, without holding up the rest",
  async (t) => {
    const { bus, close } = await connectTestBus();
    t.teardown(close);
    const metering = await startTestMetering(bus, { maxDeliveries: 2, retentionDays: 400 });
    t.teardown(() => metering.stop());

    await bus.js.publish(bus.subject(usageRecorded.subject), new TextEncoder().encode('{"version":1}'), {
      msgID: "bad-1",
    });
    const unpriced = usageEvent({ keyId: "key-dlq", model: "not-in-the-catalogue" });
    await bus.publishDurable(usageRecorded, unpriced, unpriced.requestId);
    const tooOld = usageEvent({ keyId: "key-dlq", finishedAt: "2024-01-01T00:00:00.000Z" });
    await bus.publishDurable(usageRecorded, tooOld, tooOld.requestId);
    // Valid by its schema, but beyond what the database column holds: the write fails every time.
    const overflowing = usageEvent({ keyId: "key-dlq", promptTokens: 3_000_000_000 });
    await bus.publishDurable(usageRecorded, overflowing, overflowing.requestId);
    const good = usageEvent({ keyId: "key-after-bad" });
    await bus.publishDurable(usageRecorded, good, good.requestId);

    await eventually(
      () => aggregates("usage_minute", "key-after-bad"),
      (rows) => rows.length === 1,
      "the good event",
    );
    const deadLetters = await eventually(
      async () =>
        (await meteringMessages(bus, "metering.v1.usage.dead_lettered")).map((message) =>
          UsageDeadLetter.parse(message),
        ),
      (letters) => letters.length >= 4,
      "four dead letters",
    );
    const reasons = deadLetters.map((letter) => letter.reason);
    t.equal(deadLetters.length, 4, "each message is dead-lettered once");
    for (const expected of [
      /does not match the usage event schema/,
      /not-in-the-catalogue is not in the catalogue/,
      /retention horizon/,
      /failed 2 times/,
    ]) {
      t.ok(
        reasons.some((reason) => expected.test(reason)),
        `one is dead-lettered because ${String(expected)}`,
      );
    }
    const overflowLetter = deadLetters.find((letter) => letter.reason.includes("failed"));
    t.equal(overflowLetter?.deliveries, 2, "a failing write is retried up to the bound");
    t.match(
      JSON.parse(overflowLetter?.data ?? "{}"),
      { requestId: overflowing.requestId },
      "the message is kept",
    );
    t.equal(metering.deadLetters.count, 4, "and counted");
    t.same(await aggregates("usage_minute", "key-dlq"), [], "nothing of them was counted");
  },
);

void t.test("a later price change rewrites no past cost", async (t) => {
  const { bus, close } = await connectTestBus();
  t.teardown(close);
  const before = usageEvent({ keyId: "key-price" });
  const after = usageEvent({ keyId: "key-price" });

  const cheap = await startTestMetering(bus);
  await bus.publishDurable(usageRecorded, before, before.requestId);
  await eventually(
    () => aggregates("usage_minute", "key-price"),
    (rows) => rows[0]?.requests === "1",
    "first",
  );
  await cheap.stop();

  const dear = await startTestMetering(bus, { catalogue: catalogueAt("2", "4") });
  t.teardown(() => dear.stop());
  await bus.publishDurable(usageRecorded, after, after.requestId);
  // Republished (a retry under another message id): it keeps the price it was first recorded at.
  await bus.publishDurable(usageRecorded, before, `${before.requestId}-again`);
  await eventually(
    () =>
      db
        .selectFrom("usage_events")
        .select(["request_id", "input_cost_pico", "output_cost_pico"])
        .where("key_id", "=", "key-price")
        .execute(),
    (rows) => rows.length === 2,
    "both events",
  );
  const costs = Object.fromEntries(
    (
      await db
        .selectFrom("usage_events")
        .select(["request_id", "input_cost_pico", "output_cost_pico"])
        .where("key_id", "=", "key-price")
        .execute()
    ).map((row) => [row.request_id, [row.input_cost_pico, row.output_cost_pico]]),
  );
  t.same(costs[before.requestId], [String(10n * 500_000n), String(5n * 1_500_000n)], "the old price stays");
  t.same(
    costs[after.requestId],
    [String(10n * 2_000_000n), String(5n * 4_000_000n)],
    "the new price applies",
  );
});

void t.test("audio is billed per second at the per-minute price", async (t) => {
  const { bus, close } = await connectTestBus();
  t.teardown(close);
  const metering = await startTestMetering(bus);
  t.teardown(() => metering.stop());
  const transcription = usageEvent({
    keyId: "key-audio",
    model: "tiny-whisper",
    operation: "audio.transcriptions",
    promptTokens: 0,
    completionTokens: 0,
    audioSeconds: 61,
  });
  await bus.publishDurable(usageRecorded, transcription, transcription.requestId);
  const [row] = await eventually(
    () => aggregates("usage_daily", "key-audio"),
    (rows) => rows.length === 1,
    "audio",
  );
  t.equal(row?.audio_seconds, "61");
  // 0.006 per minute = 6e9 pico per minute; 61 s = 6.1e9.
  t.equal(row?.audio_cost_pico, "6100000000");
  t.equal(row?.operation, "audio.transcriptions");
});

void t.test(
  "an event of version 1, published before the upgrade to organizations, is still counted",
  async (t) => {
    const { bus, close } = await connectTestBus();
    t.teardown(close);
    const metering = await startTestMetering(bus);
    t.teardown(() => metering.stop());
    const {
      version: _version,
      organizationId: _organization,
      projectId: _project,
      ...counts
    } = usageEvent({ keyId: "key-v1" });
    const legacy: UsageEventV1 = { version: 1, tenantId: "tenant-a", ...counts };
    await bus.publishDurable(usageRecordedV1, legacy, legacy.requestId);
    const row = await eventually(
      () => db.selectFrom("usage_events").selectAll().where("key_id", "=", "key-v1").executeTakeFirst(),
      (found) => found !== undefined,
      "the version 1 event",
    );
    t.equal(row?.organization_id, "org_default", "the organization migration 0002 moved tenants into");
    t.equal(
      row?.project_id,
      `proj_${createHash("md5").update("tenant-a").digest("hex").slice(0, 24)}`,
      "the project migration 0002 made for the tenant",
    );
    t.equal(row?.prompt_tokens, 10);
    t.equal(row?.audio_seconds, 0, "events from before audio have none");
  },
);

void t.test(
  "retention deletes raw events past the period, keeps the aggregates, and runs one at a time",
  async (t) => {
    const old = usageEvent({ keyId: "key-retention", finishedAt: "2025-01-01T00:00:00.000Z" });
    const recent = usageEvent({ keyId: "key-retention" });
    await recordUsage(db, [old, recent].map(priced));
    const retention = startRetention({ db, logger: silentLogger, retentionDays: 100, intervalMs: 3_600_000 });
    t.teardown(() => retention.stop());
    const passes = await Promise.all([retention.runOnce(), retention.runOnce(), retention.runOnce()]);
    t.equal(
      passes.reduce((sum, deleted) => sum + deleted, 0),
      1,
      "concurrent passes delete the old event once between them",
    );
    const left = await db
      .selectFrom("usage_events")
      .select("request_id")
      .where("key_id", "=", "key-retention")
      .execute();
    t.same(
      left.map((row) => row.request_id),
      [recent.requestId],
    );
    const daily = await aggregates("usage_daily", "key-retention");
    t.equal(
      daily.reduce((sum, row) => sum + Number(row.requests), 0),
      2,
      "the aggregates still count both",
    );
  },
);
