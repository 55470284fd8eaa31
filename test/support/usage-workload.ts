// Usage traffic for metering's load and fault tests (and its bench): many events spread over organizations,
// projects, keys, models, end users, operations and minutes, hours and days; the aggregates they must add up to,
// computed here independently of metering; and readers for what metering wrote to Postgres and to the METERING
// stream.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Kysely } from "kysely";
import { jetstreamManager } from "@nats-io/jetstream";
import { ensureStream, type Bus } from "@llmaas/bus";
import { parseCatalogue, priceUsage, type Catalogue } from "@llmaas/catalogue";
import {
  meteringStream,
  UsageCommitted,
  usageCommitted,
  usageDeadLettered,
  usageRecorded,
  usageStream,
  type UsageEvent,
} from "@llmaas/contracts";
import type { MeteringDatabase } from "@llmaas/db";
import { startService, type ServiceProcess } from "./stack.js";
import { testEnv } from "./env.js";
import { mulberry32 } from "@llmaas/tiny-models";

/** Prices with odd digits, so that a cost summed or rounded wrongly shows; audio is rounded per request. */
export const WORKLOAD_CATALOGUE = `
models:
  - id: tiny-chat
    owned_by: llmaas
    created: 2026-11-21
    source: /nonexistent/tiny-chat.gguf
    capabilities: [chat, completion]
    context_length: 512
    pricing: { input_per_million: "0.37", output_per_million: "1.130007" }
  - id: tiny-embed
    owned_by: llmaas
    created: 2026-11-21
    source: /nonexistent/tiny-embed.gguf
    capabilities: [embeddings]
    context_length: 256
    embeddings: { dimensions: 64 }
    pricing: { input_per_million: "0.013" }
  - id: tiny-whisper
    owned_by: llmaas
    created: 2026-11-21
    source: /nonexistent/tiny-whisper.bin
    capabilities: [audio]
    context_length: 448
    pricing: { audio_per_minute: "0.006101" }
`;

export const CURRENCY = "EUR";

export const workloadCatalogue: Catalogue = parseCatalogue(WORKLOAD_CATALOGUE, "/", "workload catalogue");

/** The catalogue written to a temporary file, for a metering process's `CATALOGUE_PATH`. */
export async function writeWorkloadCatalogue(): Promise<{ path: string; remove(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), "llmaas-metering-"));
  const path = join(dir, "catalogue.yaml");
  await writeFile(path, WORKLOAD_CATALOGUE);
  return { path, remove: () => rm(dir, { recursive: true, force: true }) };
}

/** A small seeded generator, so a workload (and a test's random choices) can be replayed. */
export const seededRandom = mulberry32;

const MINUTE_MS = 60_000;
const HOUR_MS = 60 * MINUTE_MS;
const DAY_MS = 24 * HOUR_MS;

export interface WorkloadOptions {
  count: number;
  /** Request ids are `<prefix>-<n>`: unique per run, so runs never see each other's rows. */
  prefix: string;
  seed: number;
  /** Events end at or before this time (ms since the epoch). */
  now?: number;
  /**
   * Share of events (0..1) that fall on a handful of aggregate rows (one organization, two keys, two minutes), so
   * that concurrent transactions update the very same rows.
   */
  hotShare?: number;
}

/**
 * `count` usage events: three organizations of two projects of two keys; chat, legacy completions, embeddings and
 * audio transcriptions (with audio seconds); no end user or one of three; ended in one of 36 minutes spread over
 * three days, three hours of each and four minutes of each hour, at a random second: all inside any retention
 * period metering accepts.
 */
export function usageWorkload(options: WorkloadOptions): UsageEvent[] {
  const random = seededRandom(options.seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
  const between = (low: number, high: number): number => low + Math.floor(random() * (high - low + 1));
  const thisMinute = Math.floor((options.now ?? Date.now()) / MINUTE_MS) * MINUTE_MS;
  const minutes: number[] = [];
  for (const days of [0, 1, 2])
    for (const hours of [1, 2, 7])
      for (const minutesBack of [0, 1, 2, 31])
        minutes.push(thisMinute - days * DAY_MS - hours * HOUR_MS - minutesBack * MINUTE_MS);
  const hotMinutes = [minutes[0] as number, minutes[1] as number];
  const events: UsageEvent[] = [];
  for (let index = 0; index < options.count; index++) {
    const hot = random() < (options.hotShare ?? 0);
    const org = hot ? 0 : between(0, 2);
    const project = hot ? 0 : between(0, 1);
    const key = hot ? between(0, 1) : between(0, 1);
    const kind = random();
    const operation: UsageEvent["operation"] = hot
      ? "chat.completions"
      : kind < 0.45
        ? "chat.completions"
        : kind < 0.6
          ? "completions"
          : kind < 0.8
            ? "embeddings"
            : "audio.transcriptions";
    const model =
      operation === "embeddings"
        ? "tiny-embed"
        : operation === "audio.transcriptions"
          ? "tiny-whisper"
          : "tiny-chat";
    const audio = operation === "audio.transcriptions";
    const finished = (hot ? pick(hotMinutes) : pick(minutes)) + between(0, MINUTE_MS - 1);
    events.push({
      version: 2,
      requestId: `${options.prefix}-${index}`,
      organizationId: `org_${"abc"[org]}`,
      projectId: `proj_${"abc"[org]}${project}`,
      keyId: `key_${"abc"[org]}${project}${key}`,
      endUser: hot ? null : pick([null, null, "alice", "bob", "user-42"]),
      model,
      operation,
      promptTokens: audio ? 0 : between(0, 4000),
      completionTokens: audio || operation === "embeddings" ? 0 : between(0, 1500),
      audioSeconds: audio ? between(1, 900) : 0,
      screenedInputs: 0,
      status: pick(["completed", "completed", "completed", "cancelled", "failed"]),
      servedBy: `worker-${between(1, 3)}`,
      startedAt: new Date(finished - between(5, 30_000)).toISOString(),
      finishedAt: new Date(finished).toISOString(),
    });
  }
  return events;
}

/** One message to publish: the event and its `Nats-Msg-Id`. */
export interface Publication {
  event: UsageEvent;
  msgId: string;
}

/** Both streams metering uses, so that publishing and reading work before any metering process has started. */
export async function ensureMeteringStreams(bus: Bus): Promise<void> {
  await ensureStream(bus, usageStream);
  await ensureStream(bus, meteringStream);
}

/**
 * Deletes metering's durable consumer: the next metering process creates it again and reads the usage stream from
 * its first message (for the bench, which ingests the same published events again and again).
 */
export async function deleteMeteringConsumer(bus: Bus): Promise<void> {
  const jsm = await jetstreamManager(bus.nc);
  try {
    await jsm.consumers.delete(bus.streamName(usageStream.name), "metering");
  } catch (error) {
    if (!/consumer not found/i.test(String(error))) throw error;
  }
}

/** Each event once, under its request id, as a worker publishes it. */
export function once(events: readonly UsageEvent[]): Publication[] {
  return events.map((event) => ({ event, msgId: event.requestId }));
}

/**
 * Each event twice: the second copy under another message id (a worker's retry after the duplicate window, say), so
 * that JetStream keeps both and only Postgres can tell; it comes `minLag` to `maxLag` publications after the first.
 */
export function twice(
  events: readonly UsageEvent[],
  seed: number,
  minLag: number,
  maxLag: number,
): Publication[] {
  const random = seededRandom(seed);
  const keyed: [number, Publication][] = [];
  events.forEach((event, index) => {
    keyed.push([index, { event, msgId: event.requestId }]);
    keyed.push([
      index + minLag + random() * (maxLag - minLag) + 0.5,
      { event, msgId: `${event.requestId}:again` },
    ]);
  });
  return keyed.sort(([a], [b]) => a - b).map(([, publication]) => publication);
}

/** Publications made one by one as they are published (e.g. with `finishedAt` = the moment of publishing). */
export interface PublicationSource {
  count: number;
  make(index: number): Publication;
}

export interface PublishOptions {
  /** Sees the count published so far. */
  onProgress?: (published: number) => void;
  /** Publications awaiting JetStream's acknowledgement at most. */
  inFlight?: number;
  /**
   * Skip the bus's schema check and send the JSON as is (for the bench, whose events are valid by construction and
   * whose publishing must leave the CPU to metering); the message is the same.
   */
  unchecked?: boolean;
}

/**
 * Publishes at a steady `perSecond` (the way workers' traffic arrives, not as one burst; Infinity: as fast as
 * JetStream acknowledges), each publication awaited for JetStream's acknowledgement, with `Nats-Msg-Id`.
 */
export async function publishSteadily(
  bus: Bus,
  publications: readonly Publication[] | PublicationSource,
  perSecond: number,
  options: PublishOptions = {},
): Promise<void> {
  const inFlight = options.inFlight ?? 256;
  const source: PublicationSource = Array.isArray(publications)
    ? { count: publications.length, make: (index) => publications[index] as Publication }
    : (publications as PublicationSource);
  const subject = bus.subject(usageRecorded.subject);
  const send = options.unchecked
    ? ({ event, msgId }: Publication) => bus.js.publish(subject, JSON.stringify(event), { msgID: msgId })
    : ({ event, msgId }: Publication) => bus.publishDurable(usageRecorded, event, msgId);
  const start = performance.now();
  let next = 0;
  // A counter and one waiter, not Promise.race over the outstanding publications: that is quadratic in `inFlight`.
  let outstanding = 0;
  let failure: { error: unknown } | undefined;
  let slotFreed: (() => void) | undefined;
  const publishOne = (publication: Publication): void => {
    outstanding++;
    void send(publication)
      .then(
        () => undefined,
        (error: unknown) => {
          failure ??= { error };
        },
      )
      .finally(() => {
        outstanding--;
        slotFreed?.();
      });
  };
  const slot = (atMost: number) =>
    new Promise<void>((resolve) => {
      slotFreed = () => {
        if (outstanding > atMost) return;
        slotFreed = undefined;
        resolve();
      };
    });
  while (next < source.count) {
    if (failure) throw failure.error;
    const due =
      perSecond === Infinity
        ? source.count
        : Math.min(source.count, Math.floor(((performance.now() - start) / 1000) * perSecond) + 1);
    if (next >= due) {
      await new Promise((resolve) => setTimeout(resolve, 1));
      continue;
    }
    // A few at a time, then back to the event loop: acknowledgements and everything else the process does (a
    // timer, a database poll) must not wait behind a long run of publications.
    const until = Math.min(due, next + 50);
    while (next < until) {
      if (outstanding >= inFlight) await slot(inFlight - 1);
      publishOne(source.make(next));
      next++;
      options.onProgress?.(next);
    }
    await new Promise((resolve) => setImmediate(resolve));
  }
  if (outstanding > 0) await slot(0);
  if (failure) throw failure.error;
}

export const AGGREGATE_TABLES = ["usage_minute", "usage_hourly", "usage_daily"] as const;
export type AggregateTable = (typeof AGGREGATE_TABLES)[number];

/** An aggregate row's sums, all exact. */
export interface Sums {
  requests: bigint;
  inputTokens: bigint;
  outputTokens: bigint;
  audioSeconds: bigint;
  inputCostPico: bigint;
  outputCostPico: bigint;
  audioCostPico: bigint;
}

/** Rows of each aggregate table by their key: organization, bucket, project, key, model, end user, operation. */
export type Aggregates = Record<AggregateTable, Map<string, Sums>>;

const WIDTH_MS: Record<AggregateTable, number> = {
  usage_minute: MINUTE_MS,
  usage_hourly: HOUR_MS,
  usage_daily: DAY_MS,
};

function rowKey(parts: {
  organizationId: string;
  bucketStart: number;
  projectId: string;
  keyId: string;
  model: string;
  endUser: string;
  operation: string;
}): string {
  return [
    parts.organizationId,
    new Date(parts.bucketStart).toISOString(),
    parts.projectId,
    parts.keyId,
    parts.model,
    parts.endUser,
    parts.operation,
  ].join(" | ");
}

function addInto(rows: Map<string, Sums>, key: string, sums: Sums): void {
  const row = rows.get(key);
  if (!row) {
    rows.set(key, { ...sums });
    return;
  }
  for (const field of Object.keys(sums) as (keyof Sums)[]) row[field] += sums[field];
}

function emptyAggregates(): Aggregates {
  return { usage_minute: new Map(), usage_hourly: new Map(), usage_daily: new Map() };
}

/**
 * What every aggregate row must hold once `events` are recorded, each request id once: summed straight from the
 * events (UTC buckets by `finishedAt`), costed with the catalogue's `priceUsage`.
 */
export function expectedAggregates(
  events: Iterable<UsageEvent>,
  catalogue: Catalogue = workloadCatalogue,
): Aggregates {
  const aggregates = emptyAggregates();
  const seen = new Set<string>();
  for (const event of events) {
    if (seen.has(event.requestId)) continue;
    seen.add(event.requestId);
    const model = catalogue.find(event.model);
    if (!model) throw new Error(`${event.model} is not in the workload catalogue`);
    const costs = priceUsage(model.pricing, {
      inputTokens: event.promptTokens,
      outputTokens: event.completionTokens,
      audioSeconds: event.audioSeconds,
    });
    const sums: Sums = {
      requests: 1n,
      inputTokens: BigInt(event.promptTokens),
      outputTokens: BigInt(event.completionTokens),
      audioSeconds: BigInt(event.audioSeconds),
      inputCostPico: costs.inputPico,
      outputCostPico: costs.outputPico,
      audioCostPico: costs.audioPico,
    };
    const finished = Date.parse(event.finishedAt);
    for (const table of AGGREGATE_TABLES) {
      const width = WIDTH_MS[table];
      addInto(
        aggregates[table],
        rowKey({
          organizationId: event.organizationId,
          bucketStart: finished - (finished % width),
          projectId: event.projectId,
          keyId: event.keyId,
          model: event.model,
          endUser: event.endUser ?? "",
          operation: event.operation,
        }),
        sums,
      );
    }
  }
  return aggregates;
}

/** Every row of the three aggregate tables, as metering wrote them. */
export async function readAggregates(db: Kysely<MeteringDatabase>): Promise<Aggregates> {
  const aggregates = emptyAggregates();
  for (const table of AGGREGATE_TABLES) {
    const rows = await db.selectFrom(table).selectAll().execute();
    for (const row of rows) {
      const key = rowKey({
        organizationId: row.organization_id,
        bucketStart: new Date(row.bucket_start).getTime(),
        projectId: row.project_id,
        keyId: row.key_id,
        model: row.model,
        endUser: row.end_user,
        operation: row.operation,
      });
      if (aggregates[table].has(key)) throw new Error(`${table} has two rows for ${key}`);
      aggregates[table].set(key, {
        requests: BigInt(row.requests),
        inputTokens: BigInt(row.input_tokens),
        outputTokens: BigInt(row.output_tokens),
        audioSeconds: BigInt(row.audio_seconds),
        inputCostPico: BigInt(row.input_cost_pico),
        outputCostPico: BigInt(row.output_cost_pico),
        audioCostPico: BigInt(row.audio_cost_pico),
      });
    }
  }
  return aggregates;
}

function formatSums(sums: Sums | undefined): string {
  if (!sums) return "(no row)";
  return Object.entries(sums)
    .map(([field, value]) => `${field}=${String(value)}`)
    .join(" ");
}

/**
 * Where `actual` differs from `expected`, row by row: rows missing, rows that should not exist, and rows whose sums
 * differ (every field compared exactly). Empty when they are equal. At most `limit` rows are described.
 */
export function aggregateDifferences(
  table: string,
  expected: Map<string, Sums>,
  actual: Map<string, Sums>,
  limit = 10,
): string[] {
  const differences: string[] = [];
  for (const key of new Set([...expected.keys(), ...actual.keys()])) {
    const want = expected.get(key);
    const got = actual.get(key);
    const same =
      want !== undefined &&
      got !== undefined &&
      (Object.keys(want) as (keyof Sums)[]).every((field) => want[field] === got[field]);
    if (!same) differences.push(`${table} ${key}: expected ${formatSums(want)}, got ${formatSums(got)}`);
  }
  if (differences.length > limit) {
    return [...differences.slice(0, limit), `… and ${differences.length - limit} more rows differ`];
  }
  return differences;
}

/** The sums of every row of a table together. */
export function totalOf(rows: Map<string, Sums>): Sums {
  const total = new Map<string, Sums>();
  for (const sums of rows.values()) addInto(total, "", sums);
  return (
    total.get("") ?? {
      requests: 0n,
      inputTokens: 0n,
      outputTokens: 0n,
      audioSeconds: 0n,
      inputCostPico: 0n,
      outputCostPico: 0n,
      audioCostPico: 0n,
    }
  );
}

/** Kysely's `sql`, for the bench, whose package does not depend on kysely. */
export { sql } from "kysely";

/** Every message on `subject` in the METERING stream, from the start, read with an ordered consumer. */
async function meteringMessages(bus: Bus, subject: string): Promise<unknown[]> {
  const consumer = await bus.js.consumers.get(bus.streamName(meteringStream.name), {
    // One subject as a string, i.e. `filter_subject`: an array needs nats-server 2.10 (Debian 12 ships 2.9).
    filter_subjects: bus.subject(subject),
  });
  const messages: unknown[] = [];
  if ((await consumer.info()).num_pending === 0) return messages;
  const iterator = await consumer.consume();
  for await (const msg of iterator) {
    messages.push(msg.json());
    if (msg.info.pending === 0) break;
  }
  await iterator.close();
  return messages;
}

/**
 * What metering published to billing consumers (`metering.v1.usage.committed`), folded into per-minute rows the way
 * a consumer would: each `(batchId, part)` once. Also how many parts were published more than once.
 */
export async function committedMinuteRows(
  bus: Bus,
): Promise<{ rows: Map<string, Sums>; messages: number; repeated: number }> {
  const rows = new Map<string, Sums>();
  const seen = new Set<string>();
  let repeated = 0;
  const messages = await meteringMessages(bus, usageCommitted.subject);
  for (const message of messages) {
    const committed = UsageCommitted.parse(message);
    const id = `${committed.batchId}.${committed.part}`;
    if (seen.has(id)) {
      repeated++;
      continue;
    }
    seen.add(id);
    for (const change of committed.changes) {
      addInto(
        rows,
        rowKey({
          organizationId: change.organizationId,
          bucketStart: Date.parse(change.minute),
          projectId: change.projectId,
          keyId: change.keyId,
          model: change.model,
          endUser: change.endUser ?? "",
          operation: change.operation,
        }),
        {
          requests: BigInt(change.requests),
          inputTokens: BigInt(change.inputTokens),
          outputTokens: BigInt(change.outputTokens),
          audioSeconds: BigInt(change.audioSeconds),
          inputCostPico: BigInt(change.inputCostPico),
          outputCostPico: BigInt(change.outputCostPico),
          audioCostPico: BigInt(change.audioCostPico),
        },
      );
    }
  }
  return { rows, messages: messages.length, repeated };
}

/** The usage messages metering dead-lettered (`metering.v1.usage.dead_lettered`). */
export async function deadLetterCount(bus: Bus): Promise<number> {
  return (await meteringMessages(bus, usageDeadLettered.subject)).length;
}

/** The shared durable consumer's backlog: messages not yet delivered, and delivered but not yet acknowledged. */
export async function meteringBacklog(
  bus: Bus,
): Promise<{ pending: number; ackPending: number; streamMessages: number }> {
  const jsm = await jetstreamManager(bus.nc);
  const stream = bus.streamName(usageStream.name);
  const [consumer, streamInfo] = await Promise.all([
    jsm.consumers.info(stream, "metering"),
    jsm.streams.info(stream),
  ]);
  return {
    pending: consumer.num_pending,
    ackPending: consumer.num_ack_pending,
    streamMessages: streamInfo.state.messages,
  };
}

export async function countRows(
  db: Kysely<MeteringDatabase>,
  table: "usage_events" | "metering_outbox",
): Promise<number> {
  const { count } = await db
    .selectFrom(table)
    .select((eb) => eb.fn.countAll<string>().as("count"))
    .executeTakeFirstOrThrow();
  return Number(count);
}

/**
 * Resolves once metering has caught up: `events` raw rows recorded, the shared consumer has nothing left to deliver
 * or acknowledge, and the outbox is empty (everything committed was published). Fails after `timeoutMs`, saying how
 * far it got.
 */
export async function waitForCatchUp(
  bus: Bus,
  db: Kysely<MeteringDatabase>,
  events: number,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const [recorded, backlog, outbox] = await Promise.all([
      countRows(db, "usage_events"),
      meteringBacklog(bus),
      countRows(db, "metering_outbox"),
    ]);
    if (recorded >= events && backlog.pending === 0 && backlog.ackPending === 0 && outbox === 0) return;
    if (Date.now() > deadline) {
      throw new Error(
        `metering did not catch up within ${timeoutMs} ms: ${recorded}/${events} events recorded, ` +
          `${backlog.pending} messages undelivered, ${backlog.ackPending} unacknowledged, ${outbox} outbox rows`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

export interface MeteringProcessOptions {
  namespace: string;
  databaseUrl: string;
  cataloguePath: string;
  label: string;
  env?: Record<string, string>;
}

/** The environment of a metering process. */
export function meteringEnv(options: MeteringProcessOptions): Record<string, string> {
  return {
    NATS_URL: testEnv.NATS_URL,
    BUS_NAMESPACE: options.namespace,
    DATABASE_URL: options.databaseUrl,
    CATALOGUE_PATH: options.cataloguePath,
    CURRENCY,
    INSTANCE_ID: options.label,
    LOG_LEVEL: "info",
    ...options.env,
  };
}

/** The metering service from its real entry point (`services/metering/src/main.ts`), as its own process. */
export function startMeteringProcess(options: MeteringProcessOptions): ServiceProcess {
  return startService("metering", meteringEnv(options), options.label);
}

/** Log lines that tell of a deadlock or of a write that failed and had to be retried. */
export function troubleIn(lines: readonly string[]): string[] {
  return lines.filter((line) => /40P01|deadlock|not written|dead-lettered|batch handling failed/i.test(line));
}
