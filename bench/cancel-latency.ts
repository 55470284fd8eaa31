/**
 * How fast the llm-worker stops generating once a client goes away. A long chat completion (max_tokens 4000 in a
 * 4096-token context, so it would run for seconds) is sent through the gateway with `fetch` and an AbortController:
 * streamed, it is aborted once N content chunks have arrived; non-streamed, a fixed delay after it was sent. The
 * worker's usage record, read from Postgres, then says when it stopped (`finished_at`, its clock, the same machine's)
 * and how many tokens it generated. Runs are sequential, streamed and non-streamed interleaved. See bench/README.md.
 *
 *   pnpm exec tsx bench/cancel-latency.ts [--runs 30] [--chunks 20] [--max-tokens 4000] [--delay-ms 100] [--warmup 2]
 */
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import type { Stack } from "../test/support/stack.js";
import {
  fixed,
  formatTable,
  interruptible,
  machineInfo,
  median,
  MODEL_ID,
  onPlatform,
  parseFlags,
  percentile,
  printJsonSummary,
  progress,
  PROMPT,
  roundNumbers,
  SEED,
  type BenchRuntime,
} from "./common.js";

const flags = parseFlags(
  { runs: 30, chunks: 20, maxTokens: 4000, delayMs: 100, warmup: 2 },
  ({ runs, chunks, maxTokens }) =>
    runs < 1 || chunks < 1 || maxTokens <= chunks
      ? "--runs and --chunks must be at least 1, and --max-tokens larger than --chunks"
      : undefined,
);
/** Room for the prompt and the default --max-tokens; a larger one is refused with context_length_exceeded. */
const RUNTIME: BenchRuntime = { threads: 1, sequences: 4, contextLength: 4096 };
/** A row of usage_events, as the worker's usage event was recorded by metering. */
type UsageEventRow = Awaited<ReturnType<Stack["waitForUsage"]>>;

/** The issue's target: the worker's generated-token count stops growing within 100 ms of the client closing. */
const TARGET_MS = 100;

interface RunSample {
  requestId: string;
  status: string;
  /** The worker's `finished_at` minus the client's wall-clock time just before it aborted. */
  latencyMs: number;
  completionTokens: number;
  /** Content chunks the client had received when it aborted (streamed runs; 0 otherwise). */
  received: number;
  /** Streamed: generated after the abort, or before it and still on the way: completion tokens − chunks received. */
  afterAbort: number;
  /** Streamed: the rate at which chunks reached the client before the abort (first to last chunk). */
  clientTokensPerSecond: number;
  /** From sending the request to aborting it. */
  sentToAbortMs: number;
}

function requestBody(stream: boolean, user: string): string {
  return JSON.stringify({
    model: MODEL_ID,
    messages: PROMPT,
    max_tokens: flags.maxTokens,
    temperature: 0,
    seed: SEED,
    stream,
    user,
  });
}

function post(stack: Stack, body: string, signal: AbortSignal): Promise<Response> {
  return fetch(`${stack.baseURL}/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${stack.apiKey}`, "content-type": "application/json" },
    body,
    signal,
  });
}

/** The content chunks among complete SSE events; `[DONE]` and the opening role-only chunk do not count. */
function contentChunks(events: readonly string[]): number {
  let count = 0;
  for (const event of events) {
    const data = event.startsWith("data: ") ? event.slice("data: ".length) : "";
    if (!data.startsWith("{")) continue;
    const chunk = JSON.parse(data) as { choices?: Array<{ delta?: { content?: string | null } }> };
    if (chunk.choices?.[0]?.delta?.content) count++;
  }
  return count;
}

function sample(
  row: UsageEventRow,
  abortAt: number,
  sentAt: number,
  received: number,
  clientTokensPerSecond: number,
): RunSample {
  return {
    requestId: row.request_id,
    status: row.status,
    latencyMs: new Date(row.finished_at).getTime() - abortAt,
    completionTokens: row.completion_tokens,
    received,
    afterAbort: received > 0 ? row.completion_tokens - received : Number.NaN,
    clientTokensPerSecond,
    sentToAbortMs: abortAt - sentAt,
  };
}

/** Streams until `--chunks` content chunks have arrived, aborts, then reads what the worker metered. */
async function streamedRun(stack: Stack, tag: string): Promise<RunSample> {
  const controller = new AbortController();
  const sentAt = Date.now();
  const response = await post(stack, requestBody(true, tag), controller.signal);
  if (response.status !== 200 || !response.body)
    throw new Error(`streamed request: HTTP ${response.status} ${await response.text()}`);
  const requestId = response.headers.get("x-request-id") ?? "";
  const reader: ReadableStreamDefaultReader<Uint8Array> = response.body.getReader();
  const decoder = new TextDecoder();
  let buffered = "";
  let received = 0;
  let firstChunkAt = Number.NaN;
  let lastChunkAt = Number.NaN;
  while (received < flags.chunks) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`${requestId}: the stream ended after ${received} content chunks`);
    buffered += decoder.decode(value, { stream: true });
    const events = buffered.split("\n\n");
    buffered = events.pop() ?? "";
    const arrived = contentChunks(events);
    if (arrived === 0) continue;
    const now = performance.now();
    if (received === 0) firstChunkAt = now;
    lastChunkAt = now;
    received += arrived;
  }
  // Every chunk counted so far has arrived: the client closes now.
  const abortAt = Date.now();
  controller.abort();
  await reader.cancel().catch(() => undefined);
  const row = await stack.waitForUsage(requestId);
  const clientRate = (received - 1) / ((lastChunkAt - firstChunkAt) / 1000);
  return sample(row, abortAt, sentAt, received, clientRate);
}

/**
 * Sends a request that would answer in one piece, and aborts it `--delay-ms` later. No response header arrives
 * before the answer, so the usage record is found by the end-user tag the request carried in `user`.
 */
async function nonStreamedRun(stack: Stack, tag: string): Promise<RunSample> {
  const controller = new AbortController();
  const sentAt = Date.now();
  const pending = post(stack, requestBody(false, tag), controller.signal).then(
    (response) => response,
    (error: unknown) => error,
  );
  await sleep(flags.delayMs);
  const abortAt = Date.now();
  controller.abort();
  const outcome = await pending;
  if (outcome instanceof Response)
    throw new Error(
      `non-streamed request answered before the abort: ${outcome.status} (raise --max-tokens or lower --delay-ms)`,
    );
  return sample(await usageOfEndUser(stack, tag), abortAt, sentAt, 0, Number.NaN);
}

async function usageOfEndUser(stack: Stack, endUser: string, timeoutMs = 15_000): Promise<UsageEventRow> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const row = await stack.db
      .selectFrom("usage_events")
      .selectAll()
      .where("end_user", "=", endUser)
      .executeTakeFirst();
    if (row) return row;
    if (Date.now() > deadline)
      throw new Error(`no usage recorded for end user ${endUser} within ${timeoutMs} ms`);
    await sleep(100);
  }
}

interface KindFigures {
  runs: number;
  notCancelled: number;
  latencyP50: number;
  latencyP90: number;
  latencyP99: number;
  latencyMax: number;
  latencyMin: number;
  withinTarget: number;
  completionTokensP50: number;
  completionTokensMax: number;
  afterAbortP50: number;
  afterAbortP99: number;
  afterAbortMax: number;
  clientTokensPerSecondP50: number;
  sentToAbortP50: number;
}

function kindFigures(samples: RunSample[]): KindFigures {
  const latencies = samples.map((run) => run.latencyMs);
  const tokens = samples.map((run) => run.completionTokens);
  const afterAbort = samples.map((run) => run.afterAbort).filter(Number.isFinite);
  return {
    runs: samples.length,
    notCancelled: samples.filter((run) => run.status !== "cancelled").length,
    latencyP50: percentile(latencies, 50),
    latencyP90: percentile(latencies, 90),
    latencyP99: percentile(latencies, 99),
    latencyMax: Math.max(...latencies),
    latencyMin: Math.min(...latencies),
    withinTarget: latencies.filter((latency) => latency <= TARGET_MS).length,
    completionTokensP50: median(tokens),
    completionTokensMax: Math.max(...tokens),
    afterAbortP50: percentile(afterAbort, 50),
    afterAbortP99: percentile(afterAbort, 99),
    afterAbortMax: afterAbort.length ? Math.max(...afterAbort) : Number.NaN,
    clientTokensPerSecondP50: median(samples.map((run) => run.clientTokensPerSecond).filter(Number.isFinite)),
    sentToAbortP50: median(samples.map((run) => run.sentToAbortMs)),
  };
}

function printReport(streamed: KindFigures, nonStreamed: KindFigures | undefined): void {
  const kinds: Array<[string, KindFigures]> = [[`streamed, abort after ${flags.chunks} chunks`, streamed]];
  if (nonStreamed) kinds.push([`non-streamed, abort after ${flags.delayMs} ms`, nonStreamed]);
  console.log(
    "\nStop latency: the worker's finished_at (usage record) minus the client's abort, ms (one machine clock, " +
      "ms resolution)",
  );
  console.log(
    formatTable(
      ["", "runs", "p50", "p90", "p99", "max", "min", `<= ${TARGET_MS} ms`],
      kinds.map(([label, figures]) => [
        label,
        String(figures.runs),
        fixed(figures.latencyP50, 1),
        fixed(figures.latencyP90, 1),
        fixed(figures.latencyP99, 1),
        fixed(figures.latencyMax, 0),
        fixed(figures.latencyMin, 0),
        `${figures.withinTarget}/${figures.runs}`,
      ]),
    ),
  );
  console.log("\nTokens");
  const tokenRows: string[][] = [
    [
      "streamed: after the abort (completion_tokens - chunks received)",
      fixed(streamed.afterAbortP50, 1),
      fixed(streamed.afterAbortP99, 1),
      fixed(streamed.afterAbortMax, 0),
    ],
    [
      "streamed: completion tokens metered",
      fixed(streamed.completionTokensP50, 1),
      "",
      fixed(streamed.completionTokensMax, 0),
    ],
  ];
  if (nonStreamed)
    tokenRows.push([
      "non-streamed: completion tokens metered",
      fixed(nonStreamed.completionTokensP50, 1),
      "",
      fixed(nonStreamed.completionTokensMax, 0),
    ]);
  console.log(formatTable(["", "p50", "p99", "max"], tokenRows));
  console.log(
    `Streamed chunks reached the client at ${fixed(streamed.clientTokensPerSecondP50, 0)} tokens/s (p50) before ` +
      `the abort, which came ${fixed(streamed.sentToAbortP50, 0)} ms (p50) after the request was sent` +
      (nonStreamed ? `; non-streamed aborts came ${fixed(nonStreamed.sentToAbortP50, 0)} ms after.` : "."),
  );
  const met = kinds.map(
    ([label, figures]) => `${figures.withinTarget} of ${figures.runs} ${label.split(",")[0]}`,
  );
  console.log(
    `Target (the worker's generated-token count stops growing within ${TARGET_MS} ms of the client closing): ` +
      `met by ${met.join(" and ")} runs. finished_at is taken after the generation has returned, so each ` +
      "latency is an upper bound on when the count stopped growing.",
  );
}

const run = interruptible("the current request");

async function measure(stack: Stack): Promise<void> {
  const machineBefore = machineInfo();
  const nonStreamedToo = flags.delayMs > 0;
  let index = 0;
  const tag = (kind: string): string => `cancel-latency-${kind}-${++index}`;

  // JIT, the gateway's first key lookup, the worker's first prompt: none of it is what is being measured.
  for (let warm = 0; warm < flags.warmup; warm++) {
    run.stopIfInterrupted();
    await streamedRun(stack, tag("warmup"));
    if (nonStreamedToo) await nonStreamedRun(stack, tag("warmup"));
  }
  progress(`warmed up with ${flags.warmup} runs of each kind`);

  const streamed: RunSample[] = [];
  const nonStreamed: RunSample[] = [];
  // One request at a time, each waiting for the previous one's usage record: the worker is idle when a run starts.
  for (let runIndex = 1; runIndex <= flags.runs; runIndex++) {
    run.stopIfInterrupted();
    const streamedSample = await streamedRun(stack, tag("streamed"));
    streamed.push(streamedSample);
    let line = `run ${runIndex}/${flags.runs}: streamed stopped ${streamedSample.latencyMs} ms after the abort`;
    if (nonStreamedToo) {
      run.stopIfInterrupted();
      const nonStreamedSample = await nonStreamedRun(stack, tag("non-streamed"));
      nonStreamed.push(nonStreamedSample);
      line += `, non-streamed ${nonStreamedSample.latencyMs} ms`;
    }
    progress(line);
  }

  const streamedFigures = kindFigures(streamed);
  const nonStreamedFigures = nonStreamedToo ? kindFigures(nonStreamed) : undefined;
  console.log(
    `\nModel ${MODEL_ID} (tiny random weights), threads ${RUNTIME.threads}, ${RUNTIME.sequences} sequences, ` +
      `context ${RUNTIME.contextLength}; max_tokens ${flags.maxTokens}, temperature 0, seed ${SEED}; ` +
      `${flags.warmup} warm-up + ${flags.runs} runs of each kind, one request at a time` +
      (nonStreamedToo ? ", interleaved streamed, non-streamed" : " (non-streamed skipped: --delay-ms 0)"),
  );
  const notCancelled = streamedFigures.notCancelled + (nonStreamedFigures?.notCancelled ?? 0);
  const statuses = [...streamed, ...nonStreamed]
    .filter((sample) => sample.status !== "cancelled")
    .map((sample) => `${sample.requestId}: ${sample.status}`);
  console.log(
    `Every run metered with status cancelled: ${notCancelled === 0 ? "yes" : `NO (${statuses.join(", ")})`}`,
  );
  printReport(streamedFigures, nonStreamedFigures);
  const perRun = (samples: RunSample[]) =>
    samples.map((sample) => ({
      latencyMs: sample.latencyMs,
      completionTokens: sample.completionTokens,
      ...(sample.received > 0 ? { received: sample.received, afterAbort: sample.afterAbort } : {}),
    }));
  printJsonSummary({ bench: "cancel-latency", model: MODEL_ID, runtime: RUNTIME, flags }, machineBefore, {
    targetMs: TARGET_MS,
    notCancelled,
    unit: "ms",
    streamed: roundNumbers(streamedFigures),
    nonStreamed: nonStreamedFigures ? roundNumbers(nonStreamedFigures) : null,
    runs: { streamed: perRun(streamed), nonStreamed: perRun(nonStreamed) },
  });
}

await onPlatform(run, MODEL_ID, RUNTIME, ({ stack }) => measure(stack));
