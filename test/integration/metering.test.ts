// Usage is never lost and never counted twice: duplicates are dropped by JetStream (Nats-Msg-Id) or by Postgres
// (request id), and nothing is acknowledged before it is committed.
import t from "tap";
import { createHash, randomUUID } from "node:crypto";
import { usageRecorded, usageRecordedV1, type UsageEvent, type UsageEventV1 } from "@llmaas/contracts";
import { startMetering } from "@llmaas/metering/app";
import { recordUsage } from "@llmaas/metering/store";
import { createTestDatabase } from "../support/database.js";
import { connectTestBus, silentLogger } from "../support/bus.js";

const database = await createTestDatabase();
t.teardown(() => database.drop());
const { db } = database;

function usageEvent(overrides: Partial<UsageEvent> = {}): UsageEvent {
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
    status: "completed",
    servedBy: "worker-1",
    startedAt: "2026-11-21T10:15:00.000Z",
    finishedAt: "2026-11-21T10:15:01.000Z",
    ...overrides,
  };
}

async function hourly(keyId: string) {
  return db.selectFrom("usage_hourly").selectAll().where("key_id", "=", keyId).orderBy("hour").execute();
}

void t.test("recordUsage writes events once and aggregates only the new ones", async (t) => {
  const first = usageEvent({ keyId: "key-store" });
  const second = usageEvent({ keyId: "key-store", promptTokens: 7, completionTokens: 3 });
  const later = usageEvent({ keyId: "key-store", finishedAt: "2026-11-21T11:00:00.000Z" });
  await recordUsage(db, [first, second, first]);
  await recordUsage(db, [first, second, later]);
  await recordUsage(db, [later]);
  const events = await db
    .selectFrom("usage_events")
    .select("request_id")
    .where("key_id", "=", "key-store")
    .execute();
  t.equal(events.length, 3);
  const rows = await hourly("key-store");
  t.same(
    rows.map((row) => [row.requests, row.prompt_tokens, row.completion_tokens]),
    [
      ["2", "17", "8"],
      ["1", "10", "5"],
    ],
  );
});

void t.test("the metering service consumes JetStream and dedupes", async (t) => {
  const { bus, close } = await connectTestBus();
  t.teardown(close);
  const metering = await startMetering({ bus, db, logger: silentLogger, batchSize: 10, fetchWaitMs: 1000 });
  t.teardown(() => metering.stop());

  const event = usageEvent({ keyId: "key-js" });
  // The same message id twice inside the duplicate window: stored once by JetStream.
  await bus.publishDurable(usageRecorded, event, event.requestId);
  await bus.publishDurable(usageRecorded, event, event.requestId);
  // The same request under another message id (a retry outside the window): dropped by Postgres.
  await bus.publishDurable(usageRecorded, event, `${event.requestId}-retry`);
  const other = usageEvent({ keyId: "key-js", promptTokens: 1, completionTokens: 1 });
  await bus.publishDurable(usageRecorded, other, other.requestId);

  const deadline = Date.now() + 10_000;
  let rows = await hourly("key-js");
  while ((rows[0]?.requests ?? "0") !== "2" && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
    rows = await hourly("key-js");
  }
  // Give a wrongly counted duplicate time to show up before asserting it did not.
  await new Promise((r) => setTimeout(r, 1500));
  rows = await hourly("key-js");
  t.same(
    rows.map((row) => [row.requests, row.prompt_tokens, row.completion_tokens]),
    [["2", "11", "6"]],
  );
});

void t.test("a malformed usage message is set aside without blocking the ones behind it", async (t) => {
  const { bus, close } = await connectTestBus();
  t.teardown(close);
  const metering = await startMetering({ bus, db, logger: silentLogger, batchSize: 10, fetchWaitMs: 1000 });
  t.teardown(() => metering.stop());
  await bus.js.publish(bus.subject(usageRecorded.subject), new TextEncoder().encode('{"version":1}'), {
    msgID: "bad-1",
  });
  const good = usageEvent({ keyId: "key-after-bad" });
  await bus.publishDurable(usageRecorded, good, good.requestId);
  const deadline = Date.now() + 10_000;
  while ((await hourly("key-after-bad")).length === 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
  }
  t.equal((await hourly("key-after-bad")).length, 1);
});

void t.test(
  "an event of version 1, published before the upgrade to organizations, is still counted",
  async (t) => {
    const { bus, close } = await connectTestBus();
    t.teardown(close);
    const metering = await startMetering({ bus, db, logger: silentLogger, batchSize: 10, fetchWaitMs: 1000 });
    t.teardown(() => metering.stop());
    const {
      version: _version,
      organizationId: _organization,
      projectId: _project,
      ...counts
    } = usageEvent({
      keyId: "key-v1",
    });
    const legacy: UsageEventV1 = { version: 1, tenantId: "tenant-a", ...counts };
    await bus.publishDurable(usageRecordedV1, legacy, legacy.requestId);
    const deadline = Date.now() + 10_000;
    let row = await db
      .selectFrom("usage_events")
      .selectAll()
      .where("key_id", "=", "key-v1")
      .executeTakeFirst();
    while (!row && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      row = await db.selectFrom("usage_events").selectAll().where("key_id", "=", "key-v1").executeTakeFirst();
    }
    t.equal(row?.organization_id, "org_default", "the organization migration 0002 moved tenants into");
    t.equal(
      row?.project_id,
      `proj_${createHash("md5").update("tenant-a").digest("hex").slice(0, 24)}`,
      "the project migration 0002 made for the tenant",
    );
    t.equal(row?.prompt_tokens, 10);
  },
);
