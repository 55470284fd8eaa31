// Two metering instances together give the same totals as one, with no double count and no deadlock: both consume
// the one durable consumer and write to one database at once, the same aggregate rows included (half the events fall
// on four minute rows), while a quarter of the events arrive a second time under another message id (JetStream keeps
// both copies, so the two copies may reach different instances at the same moment) and a tenth are republished under
// the same one (JetStream drops those). Both runs are compared with the sums computed from the events, and with each
// other, row by row; the instances' logs must tell of no deadlock (40P01) and no write that had to be retried.
import t, { type Test } from "tap";
import { randomBytes } from "node:crypto";
import { sql } from "kysely";
import type { UsageEvent } from "@llmaas/contracts";
import { connectTestBus } from "../support/bus.js";
import { createTestDatabase } from "../support/database.js";
import type { ServiceProcess } from "../support/stack.js";
import {
  aggregateDifferences,
  AGGREGATE_TABLES,
  committedMinuteRows,
  countRows,
  deadLetterCount,
  ensureMeteringStreams,
  expectedAggregates,
  meteringBacklog,
  publishSteadily,
  readAggregates,
  seededRandom,
  startMeteringProcess,
  troubleIn,
  usageWorkload,
  waitForCatchUp,
  writeWorkloadCatalogue,
  type Aggregates,
  type Publication,
} from "../support/usage-workload.js";

const EVENTS = 20_000;
const seed = Number(process.env.METERING_INSTANCES_SEED ?? Math.floor(Math.random() * 2 ** 31));
const events = usageWorkload({
  count: EVENTS,
  prefix: `instances-${randomBytes(4).toString("hex")}`,
  seed,
  hotShare: 0.5,
});
const expected = expectedAggregates(events);

/**
 * Every event under its request id; a quarter again, 500 to 5,000 publications later, under another message id; a
 * tenth again under the same message id (a worker's retry inside the duplicate window).
 */
function publications(): { list: Publication[]; stored: number } {
  const random = seededRandom(seed + 1);
  const keyed: [number, Publication][] = [];
  let stored = 0;
  events.forEach((event: UsageEvent, index) => {
    keyed.push([index, { event, msgId: event.requestId }]);
    stored++;
    if (index % 4 === 0) {
      keyed.push([index + 500 + random() * 4500, { event, msgId: `${event.requestId}:again` }]);
      stored++;
    }
    if (index % 10 === 3) keyed.push([index + 100 + random() * 2000, { event, msgId: event.requestId }]);
  });
  return { list: keyed.sort(([a], [b]) => a - b).map(([, publication]) => publication), stored };
}

const catalogue = await writeWorkloadCatalogue();
t.teardown(() => catalogue.remove());

interface IngestResult {
  aggregates: Aggregates;
  /** Per instance: batches written and the events they recorded as new (from its debug log). */
  written: { batches: number; recorded: number }[];
  trouble: string[];
  deadlocks: number;
}

async function ingestWith(t: Test, instances: number): Promise<IngestResult> {
  const namespace = `test_${randomBytes(6).toString("hex")}`;
  const database = await createTestDatabase();
  t.teardown(() => database.drop());
  const { bus, close } = await connectTestBus(namespace);
  t.teardown(close);
  await ensureMeteringStreams(bus);

  const processes: ServiceProcess[] = Array.from({ length: instances }, (_, index) =>
    startMeteringProcess({
      namespace,
      databaseUrl: database.url,
      cataloguePath: catalogue.path,
      label: `metering-${index + 1}`,
      env: {
        // Each batch's write is in the debug log, with how many of its events were new.
        LOG_LEVEL: "debug",
        // Small batches, many transactions: the instances' writes interleave all the time.
        METERING_BATCH_SIZE: "100",
        METERING_LINGER_MS: "10",
      },
    }),
  );
  t.teardown(() => {
    for (const process of processes) {
      if (process.child.exitCode === null && process.child.signalCode === null) process.kill();
    }
  });
  await Promise.all(processes.map((process) => process.waitFor("metering ready")));

  const { list, stored } = publications();
  await publishSteadily(bus, list, Infinity, { inFlight: 512 });
  await waitForCatchUp(bus, database.db, EVENTS, 120_000);

  t.equal((await meteringBacklog(bus)).streamMessages, stored, `JetStream kept ${stored} of ${list.length}`);
  t.equal(await countRows(database.db, "usage_events"), EVENTS, "one raw row per request");
  const aggregates = await readAggregates(database.db);
  for (const table of AGGREGATE_TABLES) {
    t.same(
      aggregateDifferences(table, expected[table], aggregates[table]),
      [],
      `every ${table} row (${expected[table].size}) equals the sums of the events`,
    );
  }
  const committed = await committedMinuteRows(bus);
  t.same(
    aggregateDifferences("metering.v1.usage.committed", expected.usage_minute, committed.rows),
    [],
    "the changes published to billing sum to the same minute rows",
  );
  t.equal(committed.repeated, 0, "no batch reached the METERING stream twice");
  t.equal(await deadLetterCount(bus), 0, "nothing was dead-lettered");

  for (const process of processes) t.equal(await process.stop(), 0, `${process.name} stops cleanly`);
  const { rows } = await sql<{ deadlocks: string }>`
    select deadlocks from pg_stat_database where datname = current_database()`.execute(database.db);
  const written = processes.map((process) => {
    let batches = 0;
    let recorded = 0;
    for (const line of process.lines) {
      if (!line.includes('"usage batch written"')) continue;
      const parsed = JSON.parse(line) as { recorded: number };
      batches++;
      recorded += parsed.recorded;
    }
    return { batches, recorded };
  });
  return {
    aggregates,
    written,
    trouble: processes.flatMap((process) =>
      troubleIn(process.lines).map((line) => `${process.name}: ${line}`),
    ),
    deadlocks: Number(rows[0]?.deadlocks ?? 0),
  };
}

let twoInstances: Aggregates | undefined;

void t.test("two instances at once: exact totals, no double count, no deadlock", async (t) => {
  const result = await ingestWith(t, 2);
  twoInstances = result.aggregates;
  t.comment(
    `seed ${seed} (METERING_INSTANCES_SEED); batches written per instance: ${result.written.map((w) => `${w.batches} (${w.recorded} new events)`).join(", ")}`,
  );
  t.ok(
    result.written.every((instance) => instance.batches > 0 && instance.recorded > 0),
    "both instances recorded events",
  );
  t.equal(
    result.written.reduce((sum, instance) => sum + instance.recorded, 0),
    EVENTS,
    "between them they recorded each request once",
  );
  t.same(result.trouble, [], "no deadlock, no write retried, nothing dead-lettered in the logs");
  t.equal(result.deadlocks, 0, "Postgres counted no deadlock in the database");
});

void t.test("one instance alone gives the very same rows", async (t) => {
  const result = await ingestWith(t, 1);
  t.same(result.trouble, [], "no write retried, nothing dead-lettered in the log");
  if (!twoInstances) {
    t.fail("the two-instance run did not finish");
    return;
  }
  for (const table of AGGREGATE_TABLES) {
    t.same(
      aggregateDifferences(table, result.aggregates[table], twoInstances[table]),
      [],
      `${table}: two instances wrote exactly what one did`,
    );
  }
});
