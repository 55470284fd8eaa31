import { sql, type Kysely, type Transaction } from "kysely";
import type { UsageChange, UsageEvent } from "@llmaas/contracts";
import type { MeteringDatabase } from "@llmaas/db";

/** A usage event with the prices in force when metering recorded it and what it costs, in pico-units. */
export interface PricedUsageEvent {
  event: UsageEvent;
  currency: string;
  prices: { input: bigint; output: bigint; audio: bigint };
  costs: { input: bigint; output: bigint; audio: bigint };
}

export interface RecordResult {
  /** Events that were new; the others had been recorded before (a redelivery or a republished event). */
  recorded: number;
  /** What the new events added, per minute aggregate row: also written to the outbox for billing consumers. */
  changes: UsageChange[];
}

const MINUTE_MS = 60_000;
const HOUR_MS = 60 * MINUTE_MS;
const DAY_MS = 24 * HOUR_MS;

const AGGREGATES = [
  { table: "usage_minute", widthMs: MINUTE_MS },
  { table: "usage_hourly", widthMs: HOUR_MS },
  { table: "usage_daily", widthMs: DAY_MS },
] as const;

interface AggregateRow {
  organizationId: string;
  bucketStart: number;
  projectId: string;
  keyId: string;
  model: string;
  /** '' for none: the column is part of the key. */
  endUser: string;
  operation: UsageEvent["operation"];
  currency: string;
  requests: number;
  inputTokens: number;
  outputTokens: number;
  audioSeconds: number;
  screenedInputs: number;
  inputCost: bigint;
  outputCost: bigint;
  audioCost: bigint;
}

/**
 * Writes a batch in one transaction: the raw events, keyed by request id (`ON CONFLICT DO NOTHING`), then the
 * per-minute, hourly and daily aggregates folded from the events that were new only, then the batch's changes to
 * the outbox. Nothing is counted twice: an event recorded before never reaches the aggregates; and nothing is half
 * counted: a failure rolls all of it back, to be retried.
 *
 * Several metering instances write at once without deadlocking because every transaction takes its row locks in
 * one global order: events by request id, then minute, hour and day rows, each sorted by key.
 */
export async function recordUsage(
  db: Kysely<MeteringDatabase>,
  batch: PricedUsageEvent[],
): Promise<RecordResult> {
  if (batch.length === 0) return { recorded: 0, changes: [] };
  const unique = [...new Map(batch.map((priced) => [priced.event.requestId, priced])).values()].sort((a, b) =>
    compare(a.event.requestId, b.event.requestId),
  );
  return db.transaction().execute(async (trx) => {
    const inserted = new Set(await insertEvents(trx, unique));
    const fresh = unique.filter((priced) => inserted.has(priced.event.requestId));
    if (fresh.length === 0) return { recorded: 0, changes: [] };
    const minuteRows = aggregate(fresh, MINUTE_MS);
    for (const { table, widthMs } of AGGREGATES) {
      const rows = widthMs === MINUTE_MS ? minuteRows : rebucket(minuteRows, widthMs);
      await upsertAggregates(trx, table, rows);
    }
    const changes = minuteRows.map(toChange);
    await trx
      .insertInto("metering_outbox")
      .values({ changes: JSON.stringify(changes) })
      .execute();
    return { recorded: fresh.length, changes };
  });
}

/** One statement whatever the batch size: each column travels as one array parameter. */
async function insertEvents(
  trx: Transaction<MeteringDatabase>,
  batch: PricedUsageEvent[],
): Promise<string[]> {
  const column = <T>(pick: (priced: PricedUsageEvent) => T): T[] => batch.map(pick);
  const amount = (pick: (priced: PricedUsageEvent) => bigint) => column((priced) => pick(priced).toString());
  const result = await sql<{ request_id: string }>`
    insert into usage_events (request_id, organization_id, project_id, key_id, end_user, model, operation,
      prompt_tokens, completion_tokens, audio_seconds, status, served_by, started_at, finished_at, currency,
      input_price_pico, output_price_pico, audio_price_pico, input_cost_pico, output_cost_pico, audio_cost_pico,
      screened_inputs)
    select * from unnest(
      ${column((p) => p.event.requestId)}::text[], ${column((p) => p.event.organizationId)}::text[],
      ${column((p) => p.event.projectId)}::text[], ${column((p) => p.event.keyId)}::text[],
      ${column((p) => p.event.endUser)}::text[], ${column((p) => p.event.model)}::text[],
      ${column((p) => p.event.operation)}::text[], ${column((p) => p.event.promptTokens)}::integer[],
      ${column((p) => p.event.completionTokens)}::integer[], ${column((p) => p.event.audioSeconds)}::integer[],
      ${column((p) => p.event.status)}::text[], ${column((p) => p.event.servedBy)}::text[],
      ${column((p) => p.event.startedAt)}::timestamptz[], ${column((p) => p.event.finishedAt)}::timestamptz[],
      ${column((p) => p.currency)}::text[],
      ${amount((p) => p.prices.input)}::bigint[], ${amount((p) => p.prices.output)}::bigint[],
      ${amount((p) => p.prices.audio)}::bigint[], ${amount((p) => p.costs.input)}::bigint[],
      ${amount((p) => p.costs.output)}::bigint[], ${amount((p) => p.costs.audio)}::bigint[],
      ${column((p) => p.event.screenedInputs)}::integer[])
    on conflict (request_id) do nothing
    returning request_id`.execute(trx);
  return result.rows.map((row) => row.request_id);
}

function keyOf(
  row: Omit<AggregateRow, "requests" | "inputTokens" | "outputTokens" | "audioSeconds" | "screenedInputs">,
): string {
  // The unit separator cannot occur in ids, model names or the validated end user.
  return [
    row.organizationId,
    String(row.bucketStart).padStart(15, "0"),
    row.projectId,
    row.keyId,
    row.model,
    row.endUser,
    row.operation,
  ].join("\u001f");
}

function fold(rows: Map<string, AggregateRow>, row: AggregateRow): void {
  const key = keyOf(row);
  const existing = rows.get(key);
  if (!existing) {
    rows.set(key, { ...row });
    return;
  }
  existing.requests += row.requests;
  existing.inputTokens += row.inputTokens;
  existing.outputTokens += row.outputTokens;
  existing.audioSeconds += row.audioSeconds;
  existing.screenedInputs += row.screenedInputs;
  existing.inputCost += row.inputCost;
  existing.outputCost += row.outputCost;
  existing.audioCost += row.audioCost;
}

function sorted(rows: Map<string, AggregateRow>): AggregateRow[] {
  return [...rows.entries()].sort(([a], [b]) => compare(a, b)).map(([, row]) => row);
}

/** Buckets are UTC: a request belongs to the minute, hour and day its response ended in. */
function aggregate(batch: PricedUsageEvent[], widthMs: number): AggregateRow[] {
  const rows = new Map<string, AggregateRow>();
  for (const { event, currency, costs } of batch) {
    const finished = Date.parse(event.finishedAt);
    fold(rows, {
      organizationId: event.organizationId,
      bucketStart: finished - (finished % widthMs),
      projectId: event.projectId,
      keyId: event.keyId,
      model: event.model,
      endUser: event.endUser ?? "",
      operation: event.operation,
      currency,
      requests: 1,
      inputTokens: event.promptTokens,
      outputTokens: event.completionTokens,
      audioSeconds: event.audioSeconds,
      screenedInputs: event.screenedInputs,
      inputCost: costs.input,
      outputCost: costs.output,
      audioCost: costs.audio,
    });
  }
  return sorted(rows);
}

function rebucket(minuteRows: AggregateRow[], widthMs: number): AggregateRow[] {
  const rows = new Map<string, AggregateRow>();
  for (const row of minuteRows)
    fold(rows, { ...row, bucketStart: row.bucketStart - (row.bucketStart % widthMs) });
  return sorted(rows);
}

async function upsertAggregates(
  trx: Transaction<MeteringDatabase>,
  table: (typeof AGGREGATES)[number]["table"],
  rows: AggregateRow[],
): Promise<void> {
  const column = <T>(pick: (row: AggregateRow) => T): T[] => rows.map(pick);
  const target = sql.table(table);
  await sql`
    insert into ${target} (organization_id, bucket_start, project_id, key_id, model, end_user, operation, requests,
      input_tokens, output_tokens, audio_seconds, input_cost_pico, output_cost_pico, audio_cost_pico,
      screened_inputs)
    select * from unnest(
      ${column((r) => r.organizationId)}::text[],
      ${column((r) => new Date(r.bucketStart).toISOString())}::timestamptz[],
      ${column((r) => r.projectId)}::text[], ${column((r) => r.keyId)}::text[], ${column((r) => r.model)}::text[],
      ${column((r) => r.endUser)}::text[], ${column((r) => r.operation)}::text[],
      ${column((r) => r.requests)}::bigint[], ${column((r) => r.inputTokens)}::bigint[],
      ${column((r) => r.outputTokens)}::bigint[], ${column((r) => r.audioSeconds)}::bigint[],
      ${column((r) => r.inputCost.toString())}::numeric[], ${column((r) => r.outputCost.toString())}::numeric[],
      ${column((r) => r.audioCost.toString())}::numeric[], ${column((r) => r.screenedInputs)}::bigint[])
    on conflict (organization_id, bucket_start, project_id, key_id, model, end_user, operation) do update set
      requests = ${target}.requests + excluded.requests,
      input_tokens = ${target}.input_tokens + excluded.input_tokens,
      output_tokens = ${target}.output_tokens + excluded.output_tokens,
      audio_seconds = ${target}.audio_seconds + excluded.audio_seconds,
      screened_inputs = ${target}.screened_inputs + excluded.screened_inputs,
      input_cost_pico = ${target}.input_cost_pico + excluded.input_cost_pico,
      output_cost_pico = ${target}.output_cost_pico + excluded.output_cost_pico,
      audio_cost_pico = ${target}.audio_cost_pico + excluded.audio_cost_pico`.execute(trx);
}

function toChange(row: AggregateRow): UsageChange {
  return {
    minute: new Date(row.bucketStart).toISOString(),
    organizationId: row.organizationId,
    projectId: row.projectId,
    keyId: row.keyId,
    model: row.model,
    endUser: row.endUser === "" ? null : row.endUser,
    operation: row.operation,
    requests: row.requests,
    inputTokens: row.inputTokens,
    outputTokens: row.outputTokens,
    audioSeconds: row.audioSeconds,
    screenedInputs: row.screenedInputs,
    currency: row.currency,
    inputCostPico: row.inputCost.toString(),
    outputCostPico: row.outputCost.toString(),
    audioCostPico: row.audioCost.toString(),
  };
}

/** By code unit, like Postgres's "C" collation; any total order will do, as long as every instance uses the same. */
function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
