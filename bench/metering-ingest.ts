/**
 * How fast metering turns usage events on the stream into committed aggregates, and how soon a usage event is
 * visible. No model, no gateway: usage events are published straight to JetStream, as workers publish them, and
 * metering runs from its real entry point as its own process (services/metering/src/main.ts).
 *
 *   A  sustained ingest: `--events` events already in the stream; metering starts and reads them all into
 *      usage_events and the minute/hour/day aggregates. Events/s from "metering ready" until the daily aggregate
 *      holds every request, per batch size (`--batch-a`, `--batch-b`) and per workload: "spread", the tests'
 *      workload, where a batch touches about as many aggregate rows as it has events (3 organizations, 12 keys,
 *      4 operations, 4 end-user values, 36 minutes over 3 days), and "concentrated", where every event falls on the
 *      same 4 minute rows (one organization, 2 keys, one model, 2 minutes). Real traffic lies between the two.
 *   R  the reference, in the same round: the same rows written by this process with plain multi-row INSERTs
 *      (`--reference-batch` rows a statement) into a table with no key, no index and no aggregate. It is the floor
 *      under anything that writes these rows to this Postgres; A ÷ R is what metering achieves of it. Also, for
 *      information, the same through `INSERT … SELECT FROM unnest()` with one array parameter a column, the form of
 *      metering's own statements, which costs the client (and the server's parser) less.
 *   L  visibility lag: events published at a steady `--rate` per second for `--seconds`, with finishedAt = the
 *      publish time; one in `--probe-every` is a probe (an end user of its own), timed from just before its publish
 *      until it is in Postgres (usage_events polled every 10 ms) and until its change reaches billing on
 *      metering.v1.usage.committed. p50/p99 per round.
 *
 * Every figure is the median over `--rounds` rounds. Postgres and NATS as the tests use them (TEST_POSTGRES_URL,
 * NATS_URL); each round has a database and a bus namespace of its own, removed at the end. See bench/README.md.
 *
 *   pnpm exec tsx bench/metering-ingest.ts [--events 200000] [--rounds 3] [--batch-a 1000] [--batch-b 5000]
 *     [--reference-batch 1000] [--rate 10000] [--seconds 20] [--probe-every 100] [--profile 0]
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { priceUsage } from "@llmaas/catalogue";
import { usageCommitted, type UsageCommitted, type UsageEvent } from "@llmaas/contracts";
import {
  fixed,
  interruptible,
  machineInfo,
  medianOfEach,
  parseFlags,
  percentile,
  progress,
  roundNumbers,
  roundsTable,
} from "./common.js";
import { connectTestBus } from "../test/support/bus.js";
import { createTestDatabase, type TestDatabase } from "../test/support/database.js";
import { REPO_ROOT, ServiceProcess } from "../test/support/stack.js";
import {
  countRows,
  CURRENCY,
  deleteMeteringConsumer,
  ensureMeteringStreams,
  meteringEnv,
  publishSteadily,
  sql,
  startMeteringProcess,
  usageWorkload,
  workloadCatalogue,
  writeWorkloadCatalogue,
  type PublicationSource,
} from "../test/support/usage-workload.js";

const flags = parseFlags(
  {
    events: 200_000,
    rounds: 3,
    batchA: 1000,
    batchB: 5000,
    referenceBatch: 1000,
    rate: 10_000,
    seconds: 20,
    probeEvery: 100,
    /** 1: write a V8 CPU profile of each metering process (stopped with SIGTERM) to a temporary directory. */
    profile: 0,
  },
  ({ events, rounds, batchA, batchB, referenceBatch, rate, seconds, probeEvery }) =>
    events < 1000 || rounds < 1 || seconds < 1 || rate < 1 || probeEvery < 1
      ? "--events must be at least 1000, and --rounds, --seconds, --rate and --probe-every at least 1"
      : [batchA, batchB].some((size) => size < 1 || size > 10_000)
        ? "--batch-a and --batch-b are METERING_BATCH_SIZE values, 1 to 10000"
        : referenceBatch < 1 || referenceBatch * 21 > 65_535
          ? "--reference-batch is 1 to 3120 rows (21 parameters a row, 65535 a statement)"
          : undefined,
);

const run = interruptible("the current measurement");
const machineBefore = machineInfo();
const catalogue = await writeWorkloadCatalogue();
const profileDir = flags.profile ? await mkdtemp(join(tmpdir(), "metering-profile-")) : undefined;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A database and a bus namespace of the round's own. */
interface Round {
  database: TestDatabase;
  bus: Awaited<ReturnType<typeof connectTestBus>>["bus"];
  namespace: string;
  close(): Promise<void>;
}

async function openRound(): Promise<Round> {
  const namespace = `bench_${randomBytes(6).toString("hex")}`;
  const database = await createTestDatabase();
  const { bus, close } = await connectTestBus(namespace);
  await ensureMeteringStreams(bus);
  return {
    database,
    bus,
    namespace,
    close: async () => {
      await close();
      await database.drop();
    },
  };
}

function startMetering(round: Round, label: string, env: Record<string, string>): ServiceProcess {
  const options = {
    namespace: round.namespace,
    databaseUrl: round.database.url,
    cataloguePath: catalogue.path,
    label,
    env,
  };
  if (!profileDir) return startMeteringProcess(options);
  // --cpu-prof is refused in NODE_OPTIONS, so the profiled process is spawned here, as startService would.
  const child = spawn(
    process.execPath,
    [
      "--cpu-prof",
      // A directory per process: the tsx loader's thread writes a profile too, under the same name if one is given.
      `--cpu-prof-dir=${join(profileDir, label)}`,
      "--import",
      join(REPO_ROOT, "node_modules/tsx/dist/esm/index.mjs"),
      join(REPO_ROOT, "services/metering/src/main.ts"),
    ],
    {
      cwd: REPO_ROOT,
      env: { PATH: process.env.PATH ?? "", ...meteringEnv(options) },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  return new ServiceProcess(label, child);
}

async function stopMetering(metering: ServiceProcess): Promise<void> {
  const code = await metering.stop();
  if (code !== 0) throw new Error(`${metering.name} exited with ${code}:\n${metering.tail()}`);
}

async function requestsInDailyAggregate(round: Round): Promise<number> {
  const { rows } = await sql<{ n: string }>`select coalesce(sum(requests), 0) as n from usage_daily`.execute(
    round.database.db,
  );
  return Number(rows[0]?.n ?? 0);
}

// ---------------------------------------------------------------------------------------------------------------
// A and R: sustained ingest, and the plain INSERT it is measured against

interface IngestFigures {
  /** Events/s from "metering ready" until the daily aggregate counts every event. */
  eventsPerSecond: number;
  /** The same until the outbox is empty too: every change published to billing. */
  publishedPerSecond: number;
}

/** All the round's events, read again from the first message by a new consumer into emptied tables. */
async function ingest(round: Round, batchSize: number, label: string): Promise<IngestFigures> {
  await sql`truncate usage_events, usage_minute, usage_hourly, usage_daily, metering_outbox`.execute(
    round.database.db,
  );
  await deleteMeteringConsumer(round.bus);
  const metering = startMetering(round, label, { METERING_BATCH_SIZE: String(batchSize) });
  try {
    await metering.waitFor("metering ready");
    const start = performance.now();
    let committed = Number.NaN;
    for (;;) {
      const counted = await requestsInDailyAggregate(round);
      if (counted >= flags.events && Number.isNaN(committed)) committed = performance.now();
      if (!Number.isNaN(committed) && (await countRows(round.database.db, "metering_outbox")) === 0) break;
      if (performance.now() - start > 600_000)
        throw new Error(`${label}: ${counted} of ${flags.events} after 10 min`);
      await sleep(20);
    }
    const published = performance.now();
    const counted = await requestsInDailyAggregate(round);
    if (counted !== flags.events)
      throw new Error(`${label}: ${counted} requests counted, ${flags.events} published`);
    return {
      eventsPerSecond: flags.events / ((committed - start) / 1000),
      publishedPerSecond: flags.events / ((published - start) / 1000),
    };
  } finally {
    await stopMetering(metering);
  }
}

const RAW_COLUMNS = [
  "request_id",
  "organization_id",
  "project_id",
  "key_id",
  "end_user",
  "model",
  "operation",
  "prompt_tokens",
  "completion_tokens",
  "audio_seconds",
  "status",
  "served_by",
  "started_at",
  "finished_at",
  "currency",
  "input_price_pico",
  "output_price_pico",
  "audio_price_pico",
  "input_cost_pico",
  "output_cost_pico",
  "audio_cost_pico",
] as const;

/** The row metering writes for an event, priced the same way. */
function rawRow(event: UsageEvent): unknown[] {
  const model = workloadCatalogue.find(event.model);
  if (!model) throw new Error(`no ${event.model} in the catalogue`);
  const { pricing } = model;
  const costs = priceUsage(pricing, {
    inputTokens: event.promptTokens,
    outputTokens: event.completionTokens,
    audioSeconds: event.audioSeconds,
  });
  return [
    event.requestId,
    event.organizationId,
    event.projectId,
    event.keyId,
    event.endUser,
    event.model,
    event.operation,
    event.promptTokens,
    event.completionTokens,
    event.audioSeconds,
    event.status,
    event.servedBy,
    event.startedAt,
    event.finishedAt,
    CURRENCY,
    String(pricing.inputPicoPerToken),
    String(pricing.outputPicoPerToken),
    String(pricing.audioPicoPerMinute),
    String(costs.inputPico),
    String(costs.outputPico),
    String(costs.audioPico),
  ];
}

/** The SQL type of each raw column, for unnest(). */
const RAW_TYPES = [
  "text",
  "text",
  "text",
  "text",
  "text",
  "text",
  "text",
  "integer",
  "integer",
  "integer",
  "text",
  "text",
  "timestamptz",
  "timestamptz",
  "text",
  "bigint",
  "bigint",
  "bigint",
  "bigint",
  "bigint",
  "bigint",
] as const;

/**
 * R: the same rows, `--reference-batch` a statement, one statement after another, into a bare table: as a multi-row
 * `INSERT … VALUES` (one parameter a value), or, as metering's own statement does, `INSERT … SELECT FROM unnest()`
 * (one array parameter a column).
 */
async function plainInsert(round: Round, rows: unknown[][], form: "values" | "unnest"): Promise<number> {
  const { db } = round.database;
  await sql`drop table if exists plain_usage_events`.execute(db);
  // The columns, their types and defaults (recorded_at): no primary key, no index.
  await sql`create table plain_usage_events (like usage_events including defaults)`.execute(db);
  const columns = sql.join(RAW_COLUMNS.map((column) => sql.ref(column)));
  const start = performance.now();
  for (let offset = 0; offset < rows.length; offset += flags.referenceBatch) {
    const chunk = rows.slice(offset, offset + flags.referenceBatch);
    if (form === "values") {
      await sql`insert into plain_usage_events (${columns})
        values ${sql.join(chunk.map((row) => sql`(${sql.join(row)})`))}`.execute(db);
    } else {
      const arrays = RAW_TYPES.map(
        (type, column) => sql`${chunk.map((row) => row[column])}::${sql.raw(type)}[]`,
      );
      await sql`insert into plain_usage_events (${columns}) select * from unnest(${sql.join(arrays)})`.execute(
        db,
      );
    }
  }
  const seconds = (performance.now() - start) / 1000;
  await sql`drop table plain_usage_events`.execute(db);
  return rows.length / seconds;
}

type Workload = "spread" | "concentrated";
const WORKLOADS: Workload[] = ["spread", "concentrated"];
/** Share of the events that fall on the workload's handful of hot aggregate rows. */
const HOT_SHARE: Record<Workload, number> = { spread: 0, concentrated: 1 };

interface IngestRound {
  /** Metering, per workload and batch size (A, B). */
  spread: { a: IngestFigures; b: IngestFigures };
  concentrated: { a: IngestFigures; b: IngestFigures };
  /** The plain INSERT of the spread workload's rows (the raw rows are alike in both), in each form. */
  reference: number;
  referenceUnnest: number;
  /** Committed events/s ÷ the plain INSERT's. */
  ratio: { spreadA: number; spreadB: number; concentratedA: number; concentratedB: number };
}

async function ingestRounds(): Promise<IngestRound[]> {
  const results: IngestRound[] = [];
  for (let index = 1; index <= flags.rounds; index++) {
    run.stopIfInterrupted();
    const rounds: Partial<Record<Workload, Round>> = {};
    try {
      let referenceRows: unknown[][] = [];
      for (const workload of WORKLOADS) {
        const round = (rounds[workload] = await openRound());
        const events = usageWorkload({
          count: flags.events,
          prefix: `bench-${index}-${workload}`,
          seed: index,
          hotShare: HOT_SHARE[workload],
        });
        if (workload === "spread") referenceRows = events.map(rawRow);
        progress(`round ${index}: publishing ${flags.events} usage events (${workload})`);
        const publishStart = performance.now();
        await publishSteadily(
          round.bus,
          events.map((event) => ({ event, msgId: event.requestId })),
          Infinity,
          { inFlight: 2000, unchecked: true },
        );
        progress(
          `round ${index}: published at ${fixed(flags.events / ((performance.now() - publishStart) / 1000), 0)}/s`,
        );
      }
      const figures: Record<string, IngestFigures> = {};
      let reference = Number.NaN;
      let referenceUnnest = Number.NaN;
      const steps: (() => Promise<void>)[] = [
        ...WORKLOADS.flatMap((workload) =>
          (["a", "b"] as const).map((which) => async () => {
            const batchSize = which === "a" ? flags.batchA : flags.batchB;
            figures[`${workload}-${which}`] = await ingest(
              rounds[workload] as Round,
              batchSize,
              `metering-${index}-${workload}-batch-${batchSize}`,
            );
          }),
        ),
        async () => {
          reference = await plainInsert(rounds.spread as Round, referenceRows, "values");
        },
        async () => {
          referenceUnnest = await plainInsert(rounds.spread as Round, referenceRows, "unnest");
        },
      ];
      // Rotated, so that no measurement always runs first (cold caches) or last.
      for (let step = 0; step < steps.length; step++) {
        run.stopIfInterrupted();
        await (steps[(step + index - 1) % steps.length] as () => Promise<void>)();
      }
      const pick = (key: string) => figures[key] as IngestFigures;
      const result: IngestRound = {
        spread: { a: pick("spread-a"), b: pick("spread-b") },
        concentrated: { a: pick("concentrated-a"), b: pick("concentrated-b") },
        reference,
        referenceUnnest,
        ratio: {
          spreadA: pick("spread-a").eventsPerSecond / reference,
          spreadB: pick("spread-b").eventsPerSecond / reference,
          concentratedA: pick("concentrated-a").eventsPerSecond / reference,
          concentratedB: pick("concentrated-b").eventsPerSecond / reference,
        },
      };
      results.push(result);
      progress(
        `round ${index}/${flags.rounds}: spread ${fixed(result.spread.a.eventsPerSecond, 0)}/s (batch ` +
          `${flags.batchA}), ${fixed(result.spread.b.eventsPerSecond, 0)}/s (${flags.batchB}); concentrated ` +
          `${fixed(result.concentrated.a.eventsPerSecond, 0)}/s, ${fixed(result.concentrated.b.eventsPerSecond, 0)}/s; ` +
          `plain INSERT ${fixed(reference, 0)}/s (unnest ${fixed(referenceUnnest, 0)}/s)`,
      );
    } finally {
      for (const round of Object.values(rounds)) await round.close();
    }
  }
  return results;
}

// ---------------------------------------------------------------------------------------------------------------
// L: visibility lag at a steady rate

interface LagRound {
  publishedPerSecond: number;
  probes: number;
  inPostgres: { p50: number; p99: number; max: number };
  onStream: { p50: number; p99: number; max: number };
  /** Probes never seen (should be 0). */
  missing: number;
}

function lagFigures(samples: number[]): { p50: number; p99: number; max: number } {
  return { p50: percentile(samples, 50), p99: percentile(samples, 99), max: Math.max(...samples) };
}

function liveEvent(requestId: string, endUser: string | null, now: number, sequence: number): UsageEvent {
  return {
    version: 2,
    requestId,
    organizationId: `org_${"abc"[sequence % 3]}`,
    projectId: `proj_${"abc"[sequence % 3]}0`,
    keyId: `key_${"abc"[sequence % 3]}0${sequence % 2}`,
    endUser,
    model: "tiny-chat",
    operation: "chat.completions",
    promptTokens: 100 + (sequence % 900),
    completionTokens: 10 + (sequence % 300),
    audioSeconds: 0,
    screenedInputs: 0,
    status: "completed",
    servedBy: "worker-1",
    startedAt: new Date(now - 500).toISOString(),
    finishedAt: new Date(now).toISOString(),
  };
}

async function lagRound(index: number): Promise<LagRound> {
  const round = await openRound();
  // The service's own defaults for batch size and linger: what a deployment gets.
  const metering = startMetering(round, `metering-lag-${index}`, {});
  try {
    await metering.waitFor("metering ready");
    const probeSentAt = new Map<string, number>();
    const inPostgres: number[] = [];
    const onStream: number[] = [];
    const seenOnStream = new Set<string>();
    const subscription = round.bus.nc.subscribe(round.bus.subject(usageCommitted.subject), {
      callback: (_error, msg) => {
        const receivedAt = performance.now();
        const committed = msg.json<UsageCommitted>();
        for (const change of committed.changes) {
          const sentAt = change.endUser === null ? undefined : probeSentAt.get(change.endUser);
          if (sentAt === undefined || seenOnStream.has(change.endUser as string)) continue;
          seenOnStream.add(change.endUser as string);
          onStream.push(receivedAt - sentAt);
        }
      },
    });
    const outstanding = new Map<string, number>();
    let publishing = true;
    const poller = (async () => {
      while (publishing || outstanding.size > 0) {
        if (outstanding.size > 0) {
          const ids = [...outstanding.keys()];
          const found = await round.database.db
            .selectFrom("usage_events")
            .select("request_id")
            .where("request_id", "in", ids)
            .execute();
          const now = performance.now();
          for (const { request_id } of found) {
            inPostgres.push(now - (outstanding.get(request_id) as number));
            outstanding.delete(request_id);
          }
        }
        await sleep(10);
      }
    })();

    const total = flags.rate * flags.seconds;
    const prefix = `lag-${index}-${randomBytes(3).toString("hex")}`;
    const start = performance.now();
    const source: PublicationSource = {
      count: total,
      make: (sequence) => {
        const requestId = `${prefix}-${sequence}`;
        const probe = sequence % flags.probeEvery === 0 ? `probe-${prefix}-${sequence}` : null;
        if (probe !== null) {
          const sentAt = performance.now();
          probeSentAt.set(probe, sentAt);
          outstanding.set(requestId, sentAt);
        }
        return { event: liveEvent(requestId, probe, Date.now(), sequence), msgId: requestId };
      },
    };
    // Events are made as they are published, so that finishedAt is the publish time.
    await publishSteadily(round.bus, source, flags.rate, { inFlight: 2000, unchecked: true });
    const publishedPerSecond = total / ((performance.now() - start) / 1000);
    publishing = false;
    const deadline = performance.now() + 60_000;
    while ((outstanding.size > 0 || seenOnStream.size < probeSentAt.size) && performance.now() < deadline) {
      await sleep(50);
    }
    const missing = outstanding.size + (probeSentAt.size - seenOnStream.size);
    outstanding.clear();
    await poller;
    subscription.unsubscribe();
    return {
      publishedPerSecond,
      probes: probeSentAt.size,
      inPostgres: lagFigures(inPostgres),
      onStream: lagFigures(onStream),
      missing,
    };
  } finally {
    await stopMetering(metering);
    await round.close();
  }
}

async function lagRounds(): Promise<LagRound[]> {
  const results: LagRound[] = [];
  for (let index = 1; index <= flags.rounds; index++) {
    run.stopIfInterrupted();
    progress(`lag round ${index}: ${flags.rate}/s for ${flags.seconds} s`);
    const result = await lagRound(index);
    results.push(result);
    progress(
      `lag round ${index}/${flags.rounds}: published ${fixed(result.publishedPerSecond, 0)}/s; in Postgres p50 ` +
        `${fixed(result.inPostgres.p50)} p99 ${fixed(result.inPostgres.p99)} ms; on the stream p50 ` +
        `${fixed(result.onStream.p50)} p99 ${fixed(result.onStream.p99)} ms; ${result.missing} missing`,
    );
  }
  return results;
}

try {
  const ingestResults = await ingestRounds();
  const ingestOverall = medianOfEach(ingestResults);
  const lagResults = await lagRounds();
  const lagOverall = medianOfEach(lagResults);

  console.log(`Sustained ingest of ${flags.events} events already in the stream (events/s):\n`);
  console.log(
    roundsTable<IngestRound>(
      [
        [`spread, batch ${flags.batchA}: committed`, (f) => f.spread.a.eventsPerSecond, 0],
        [`spread, batch ${flags.batchA}: published to billing`, (f) => f.spread.a.publishedPerSecond, 0],
        [`spread, batch ${flags.batchB}: committed`, (f) => f.spread.b.eventsPerSecond, 0],
        [`spread, batch ${flags.batchB}: published to billing`, (f) => f.spread.b.publishedPerSecond, 0],
        [`concentrated, batch ${flags.batchA}: committed`, (f) => f.concentrated.a.eventsPerSecond, 0],
        [`concentrated, batch ${flags.batchA}: published`, (f) => f.concentrated.a.publishedPerSecond, 0],
        [`concentrated, batch ${flags.batchB}: committed`, (f) => f.concentrated.b.eventsPerSecond, 0],
        [`concentrated, batch ${flags.batchB}: published`, (f) => f.concentrated.b.publishedPerSecond, 0],
        [`plain INSERT … VALUES, ${flags.referenceBatch} rows a statement`, (f) => f.reference, 0],
        [`plain INSERT … unnest(), ${flags.referenceBatch} rows a statement`, (f) => f.referenceUnnest, 0],
        [`spread ${flags.batchA} ÷ plain INSERT`, (f) => f.ratio.spreadA, 3],
        [`spread ${flags.batchB} ÷ plain INSERT`, (f) => f.ratio.spreadB, 3],
        [`concentrated ${flags.batchA} ÷ plain INSERT`, (f) => f.ratio.concentratedA, 3],
        [`concentrated ${flags.batchB} ÷ plain INSERT`, (f) => f.ratio.concentratedB, 3],
      ],
      ingestResults,
      ingestOverall,
    ),
  );
  console.log(
    `\nVisibility lag at ${flags.rate} events/s for ${flags.seconds} s (ms, 1 probe in ${flags.probeEvery}):\n`,
  );
  console.log(
    roundsTable<LagRound>(
      [
        ["published events/s", (f) => f.publishedPerSecond, 0],
        ["probes", (f) => f.probes, 0],
        ["in Postgres p50", (f) => f.inPostgres.p50, 1],
        ["in Postgres p99", (f) => f.inPostgres.p99, 1],
        ["in Postgres max", (f) => f.inPostgres.max, 1],
        ["on metering.v1.usage.committed p50", (f) => f.onStream.p50, 1],
        ["on metering.v1.usage.committed p99", (f) => f.onStream.p99, 1],
        ["on metering.v1.usage.committed max", (f) => f.onStream.max, 1],
        ["probes never seen", (f) => f.missing, 0],
      ],
      lagResults,
      lagOverall,
    ),
  );
  if (profileDir) console.log(`\nCPU profiles of the metering processes: ${profileDir}`);
  console.log(
    JSON.stringify(
      roundNumbers({
        bench: "metering-ingest",
        flags,
        machine: { ...machineBefore, loadavgAfter: machineInfo().loadavg },
        median: { ingest: ingestOverall, lag: lagOverall },
        rounds: { ingest: ingestResults, lag: lagResults },
      }),
    ),
  );
} catch (error) {
  if (!run.interrupted) throw error;
  process.exitCode = 130;
} finally {
  await catalogue.remove();
}
