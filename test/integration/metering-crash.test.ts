// Usage survives crashes exactly: 20,000 events published at a steady pace while the metering process is killed
// with SIGKILL at random points (at least three times) and started again; afterwards every aggregate row (minute,
// hour, day) equals the sums of the published events, costs included, to the pico-unit, and so do the changes
// metering published to billing consumers. The same with the Postgres metering writes to restarted mid-run, and with
// every event published twice under different message ids (JetStream keeps both; Postgres must tell).
//
// Metering runs from its real entry point as a child process, so a kill is a real crash: no stop handler runs, a
// transaction in flight is rolled back by Postgres, unacknowledged messages come back after METERING_ACK_WAIT_MS.
import t, { type Test } from "tap";
import { once } from "node:events";
import { randomBytes } from "node:crypto";
import type { Kysely } from "kysely";
import type { UsageEvent } from "@llmaas/contracts";
import { createDatabase, migrateToLatest, type MeteringDatabase } from "@llmaas/db";
import { connectTestBus } from "../support/bus.js";
import { createTestDatabase } from "../support/database.js";
import { startPrivatePostgres, type PrivatePostgres } from "../support/private-postgres.js";
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
  once as eachOnce,
  publishSteadily,
  readAggregates,
  seededRandom,
  startMeteringProcess,
  totalOf,
  twice,
  usageWorkload,
  waitForCatchUp,
  writeWorkloadCatalogue,
  type Publication,
} from "../support/usage-workload.js";

const EVENTS = 20_000;
/** Redeliveries after a kill come this soon; the configuration's minimum is 1000. */
const ACK_WAIT_MS = 2000;
const BATCH_SIZE = 200;

const catalogue = await writeWorkloadCatalogue();
t.teardown(() => catalogue.remove());

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The metering process of a run, started again whenever the run kills it. A process that exits without being killed
 * (a crash of its own) is recorded, and started again too, so that the run can still tell what was lost.
 */
class CrashingMetering {
  readonly generations: ServiceProcess[] = [];
  /** Exits nobody asked for: "<label> exited with <code/signal>" and the end of its log. */
  readonly unexpectedExits: string[] = [];
  kills = 0;
  private current!: ServiceProcess;
  private ready!: Promise<unknown>;
  private readonly killed = new Set<ServiceProcess>();
  private stopping = false;

  constructor(private readonly start: (label: string) => ServiceProcess) {
    this.launch();
  }

  private launch(): void {
    const process = this.start(`metering-${this.generations.length + 1}`);
    this.generations.push(process);
    this.current = process;
    this.ready = process.waitFor("metering ready", 60_000);
    // Looked at through whenReady; an exit before ready is handled by the exit listener.
    this.ready.catch(() => undefined);
    process.child.once("exit", (code, signal) => {
      if (this.killed.has(process) || this.stopping) return;
      this.unexpectedExits.push(`${process.name} exited with ${code ?? signal}:\n${process.tail(15)}`);
      this.launch();
    });
  }

  /** The running process once it is ready (following restarts after unexpected exits). */
  async whenReady(): Promise<ServiceProcess> {
    for (;;) {
      const process = this.current;
      try {
        await this.ready;
        return process;
      } catch (error) {
        if (this.current === process) throw error;
      }
    }
  }

  /** SIGKILL the running process (once it is ready), then start another after `pauseMs`. */
  async killAndRestart(pauseMs: number): Promise<void> {
    const process = await this.whenReady();
    this.killed.add(process);
    const exited = once(process.child, "exit");
    process.kill();
    await exited;
    this.kills++;
    await sleep(pauseMs);
    this.launch();
  }

  /** A graceful stop (SIGTERM) of the running process: its exit code. */
  async stop(): Promise<number | null> {
    const process = await this.whenReady();
    this.stopping = true;
    return process.stop();
  }

  /** Kills whatever is still running: the teardown after a failure. */
  killAll(): void {
    this.stopping = true;
    for (const process of this.generations) {
      if (process.child.exitCode === null && process.child.signalCode === null) process.kill();
    }
  }

  lines(): string[] {
    return this.generations.flatMap((process) => process.lines);
  }
}

interface CrashRunOptions {
  /** Every event of the run, each once. */
  events: UsageEvent[];
  /** What is published, in order, with which message ids. */
  publications: Publication[];
  perSecond: number;
  seed: number;
  /** Restart the database server once, when this share of the publications has gone out. */
  restartPostgresAt?: number;
}

interface Database {
  url: string;
  db: Kysely<MeteringDatabase>;
  restart?: () => Promise<void>;
  drop(): Promise<void>;
}

/** A migrated database on a private Postgres server of the test's own, which the test may restart. */
async function privateDatabase(t: Test): Promise<Database> {
  const server: PrivatePostgres = await startPrivatePostgres();
  t.teardown(() => server.stop());
  const db = createDatabase<MeteringDatabase>({
    url: server.url(),
    poolSize: 4,
    // The restart closes the test's idle connections too; the pool replaces them.
    onConnectionError: () => undefined,
  });
  await migrateToLatest(db);
  return {
    url: server.url(),
    db,
    restart: async () => {
      try {
        await server.restart("immediate");
      } catch (error) {
        throw new Error(`restarting Postgres failed:\n${await server.log()}`, { cause: error });
      }
    },
    drop: () => db.destroy(),
  };
}

async function crashRun(t: Test, database: Database, options: CrashRunOptions): Promise<void> {
  const started = performance.now();
  const random = seededRandom(options.seed);
  const namespace = `test_${randomBytes(6).toString("hex")}`;
  const { bus, close } = await connectTestBus(namespace);
  t.teardown(close);
  t.teardown(() => database.drop());
  // The stream exists before the first publication, whoever starts first.
  await ensureMeteringStreams(bus);

  const metering = new CrashingMetering((label) =>
    startMeteringProcess({
      namespace,
      databaseUrl: database.url,
      cataloguePath: catalogue.path,
      label,
      env: {
        METERING_BATCH_SIZE: String(BATCH_SIZE),
        METERING_LINGER_MS: "20",
        METERING_ACK_WAIT_MS: String(ACK_WAIT_MS),
        DATABASE_POOL_SIZE: "4",
      },
    }),
  );
  t.teardown(() => metering.killAll());
  await metering.whenReady();

  // Faults at random points of the publishing: three kills in three thirds of it, the optional Postgres restart,
  // then one more kill while metering catches up. Each waits for the process before it to be ready, then lets it
  // work a random while, so that kills land in the middle of batches, commits and outbox publishing.
  const total = options.publications.length;
  const faults: { at: number; what: "kill" | "postgres" }[] = [
    { at: 0.05 + random() * 0.25, what: "kill" },
    { at: 0.35 + random() * 0.25, what: "kill" },
    { at: 0.65 + random() * 0.3, what: "kill" },
  ];
  if (options.restartPostgresAt !== undefined)
    faults.push({ at: options.restartPostgresAt, what: "postgres" });
  faults.sort((a, b) => a.at - b.at);
  let published = 0;
  const progressWaiters: { count: number; resolve: () => void }[] = [];
  const reached = (count: number) =>
    new Promise<void>((resolve) => {
      if (published >= count) resolve();
      else progressWaiters.push({ count, resolve });
    });
  let postgresRestarts = 0;
  const chaos = (async () => {
    for (const fault of faults) {
      await reached(Math.floor(fault.at * total));
      await metering.whenReady();
      await sleep(100 + random() * 500);
      if (fault.what === "kill") await metering.killAndRestart(random() * 400);
      else {
        await database.restart?.();
        postgresRestarts++;
      }
    }
    await reached(total);
    await metering.whenReady();
    await sleep(random() * 800);
    await metering.killAndRestart(random() * 400);
  })();

  await publishSteadily(bus, options.publications, options.perSecond, {
    onProgress: (count) => {
      published = count;
      for (const waiter of progressWaiters.filter((w) => w.count <= count)) {
        progressWaiters.splice(progressWaiters.indexOf(waiter), 1);
        waiter.resolve();
      }
    },
  });
  const publishedAfter = performance.now();
  await chaos;
  await metering.whenReady();
  await waitForCatchUp(bus, database.db, options.events.length, 120_000);
  const caughtUpAfter = performance.now();
  const retried = metering.lines().filter((line) => line.includes("not written; will be retried")).length;
  t.comment(
    `${total} publications in ${((publishedAfter - started) / 1000).toFixed(1)} s, caught up ` +
      `${((caughtUpAfter - publishedAfter) / 1000).toFixed(1)} s later; ${metering.kills} kills, ` +
      `${postgresRestarts} Postgres restarts, ${retried} batches retried; METERING_CRASH_SEED=${seed} replays the choices`,
  );

  t.ok(metering.kills >= 4, `metering was killed with SIGKILL ${metering.kills} times and restarted`);
  if (options.restartPostgresAt !== undefined) t.equal(postgresRestarts, 1, "Postgres was restarted once");
  t.same(metering.unexpectedExits, [], "metering never exited on its own");

  const backlog = await meteringBacklog(bus);
  t.equal(backlog.streamMessages, total, `JetStream kept every publication (${total})`);
  t.equal(await countRows(database.db, "usage_events"), options.events.length, "one raw row per request");

  const expected = expectedAggregates(options.events);
  const actual = await readAggregates(database.db);
  for (const table of AGGREGATE_TABLES) {
    t.same(
      aggregateDifferences(table, expected[table], actual[table]),
      [],
      `every ${table} row (${expected[table].size}) equals the sums of the published events`,
    );
  }
  t.equal(totalOf(actual.usage_daily).requests, BigInt(options.events.length), "each request counted once");

  const committed = await committedMinuteRows(bus);
  t.same(
    aggregateDifferences("metering.v1.usage.committed", expected.usage_minute, committed.rows),
    [],
    `the changes published to billing (${committed.messages} messages) sum to the same minute rows`,
  );
  t.equal(committed.repeated, 0, "no batch reached the METERING stream twice");
  t.equal(await deadLetterCount(bus), 0, "nothing was dead-lettered");
  t.same(
    metering.lines().filter((line) => /dead-lettered|batch handling failed/.test(line)),
    [],
    "no log line tells of a dead letter or a failed batch",
  );
  t.equal(await metering.stop(), 0, "the last metering process stops cleanly");
}

const seed = Number(process.env.METERING_CRASH_SEED ?? Math.floor(Math.random() * 2 ** 31));

void t.test("killed at least three times: every aggregate equals the published events", async (t) => {
  const events = usageWorkload({ count: EVENTS, prefix: `crash-${randomBytes(4).toString("hex")}`, seed });
  const database = await createTestDatabase();
  await crashRun(t, database, { events, publications: eachOnce(events), perSecond: 2500, seed });
});

void t.test("the same with Postgres restarted once mid-run", async (t) => {
  const events = usageWorkload({
    count: EVENTS,
    prefix: `pg-${randomBytes(4).toString("hex")}`,
    seed: seed + 1,
  });
  const database = await privateDatabase(t);
  await crashRun(t, database, {
    events,
    publications: eachOnce(events),
    perSecond: 2500,
    seed: seed + 1,
    restartPostgresAt: 0.5,
  });
});

void t.test("the same with every event published twice, under two message ids", async (t) => {
  const events = usageWorkload({
    count: EVENTS,
    prefix: `twice-${randomBytes(4).toString("hex")}`,
    seed: seed + 2,
  });
  const database = await createTestDatabase();
  await crashRun(t, database, {
    events,
    // The second copy comes 2,000 to 12,000 publications later: often after the first was committed and acked.
    publications: twice(events, seed + 2, 2000, 12_000),
    perSecond: 5000,
    seed: seed + 2,
  });
});
