/**
 * What verifying the API key costs on the hot path: the same authenticated request (`GET /v1/models`, which does
 * nothing but authenticate and answer from the gateway's catalogue, so the key is all that differs) sent to two
 * gateways of one platform, side by side:
 *   A  a gateway with its verified-key cache (the default): a key is checked by `auth` once, then from memory;
 *   B  a gateway with `AUTH_CACHE_TTL_MS=0`: a round trip to `auth` (NATS, then Postgres) on every request;
 *   H  `GET /healthz` on gateway A: an HTTP exchange with no key at all, the floor both are measured from.
 * Latency: sequential requests, H, A, B interleaved, `--runs` of each per round. Throughput: `--concurrency` clients
 * in a closed loop for `--seconds` on each path in turn, the order rotated each round. Every figure is the median
 * over `--rounds` rounds. See bench/README.md.
 *
 *   pnpm exec tsx bench/key-verification.ts [--runs 500] [--rounds 5] [--concurrency 16] [--seconds 3] [--warmup 200]
 */
import { performance } from "node:perf_hooks";
import {
  fixed,
  interruptible,
  machineInfo,
  medianOfEach,
  onPlatform,
  parseFlags,
  percentile,
  printJsonSummary,
  progress,
  roundNumbers,
  roundsTable,
  type BenchRuntime,
} from "./common.js";

const flags = parseFlags(
  { runs: 500, rounds: 5, concurrency: 16, seconds: 3, warmup: 200 },
  ({ runs, rounds, concurrency, seconds }) =>
    runs < 10 || rounds < 1 || concurrency < 1 || seconds < 1
      ? "--runs must be at least 10, and --rounds, --concurrency and --seconds at least 1"
      : undefined,
);
const RUNTIME: BenchRuntime = { threads: 1, sequences: 4, contextLength: 512 };

type PathName = "healthz" | "cached" | "roundTrip";

interface Target {
  url: string;
  apiKey: string | null;
}

async function send(target: Target): Promise<number> {
  const start = performance.now();
  const response = await fetch(target.url, {
    headers: target.apiKey === null ? {} : { authorization: `Bearer ${target.apiKey}` },
  });
  await response.arrayBuffer();
  if (response.status !== 200) throw new Error(`${target.url} answered ${response.status}`);
  return performance.now() - start;
}

interface LatencyFigures {
  p50: number;
  p99: number;
}

function latencyFigures(samples: number[]): LatencyFigures {
  return { p50: percentile(samples, 50), p99: percentile(samples, 99) };
}

/** Requests per second that `concurrency` clients, each sending its next request when the last one returns, get. */
async function throughput(target: Target): Promise<number> {
  const end = performance.now() + flags.seconds * 1000;
  let completed = 0;
  const client = async (): Promise<void> => {
    while (performance.now() < end) {
      await send(target);
      completed++;
    }
  };
  const start = performance.now();
  await Promise.all(Array.from({ length: flags.concurrency }, client));
  return completed / ((performance.now() - start) / 1000);
}

interface RoundFigures {
  latency: Record<PathName, LatencyFigures>;
  /** Latency each path adds to the keyless request (p50 minus p50, p99 minus p99). */
  added: { cached: LatencyFigures; roundTrip: LatencyFigures };
  rps: Record<PathName, number>;
  /** Requests per second with the cache ÷ with a round trip per request. */
  rpsRatio: number;
}

const run = interruptible("the current round");
const machineBefore = machineInfo();

await onPlatform(
  run,
  "tiny-chat",
  RUNTIME,
  async ({ stack }) => {
    const [cachedURL, roundTripURL] = stack.baseURLs;
    if (!cachedURL || !roundTripURL) throw new Error("the bench needs two gateways");
    const targets: Record<PathName, Target> = {
      healthz: { url: `${cachedURL.replace(/\/v1$/, "")}/healthz`, apiKey: null },
      cached: { url: `${cachedURL}/models`, apiKey: stack.apiKey },
      roundTrip: { url: `${roundTripURL}/models`, apiKey: stack.apiKey },
    };
    const paths = Object.keys(targets) as PathName[];

    for (let index = 0; index < flags.warmup; index++) {
      run.stopIfInterrupted();
      for (const path of paths) await send(targets[path]);
    }
    progress(`warmed up with ${flags.warmup} requests of each path`);

    const rounds: RoundFigures[] = [];
    for (let round = 1; round <= flags.rounds; round++) {
      const samples: Record<PathName, number[]> = { healthz: [], cached: [], roundTrip: [] };
      for (let index = 0; index < flags.runs; index++) {
        run.stopIfInterrupted();
        for (const path of paths) samples[path].push(await send(targets[path]));
      }
      const rps = {} as Record<PathName, number>;
      // Rotated, so that no path always runs first (or last) while the machine warms up or cools down.
      const order = paths.map((_, i) => paths[(i + round) % paths.length] as PathName);
      for (const path of order) {
        run.stopIfInterrupted();
        rps[path] = await throughput(targets[path]);
      }
      const latency = {
        healthz: latencyFigures(samples.healthz),
        cached: latencyFigures(samples.cached),
        roundTrip: latencyFigures(samples.roundTrip),
      };
      const minus = (a: LatencyFigures, b: LatencyFigures) => ({ p50: a.p50 - b.p50, p99: a.p99 - b.p99 });
      const figures: RoundFigures = {
        latency,
        added: {
          cached: minus(latency.cached, latency.healthz),
          roundTrip: minus(latency.roundTrip, latency.healthz),
        },
        rps,
        rpsRatio: rps.cached / rps.roundTrip,
      };
      rounds.push(figures);
      progress(
        `round ${round}/${flags.rounds}: p50 ${fixed(latency.cached.p50)} vs ${fixed(latency.roundTrip.p50)} ms, ` +
          `${fixed(rps.cached, 0)} vs ${fixed(rps.roundTrip, 0)} req/s`,
      );
    }

    const overall = medianOfEach(rounds);
    console.log(
      roundsTable<RoundFigures>(
        [
          ["healthz (no key) p50 ms", (f) => f.latency.healthz.p50, 2],
          ["healthz (no key) p99 ms", (f) => f.latency.healthz.p99, 2],
          ["cached key p50 ms", (f) => f.latency.cached.p50, 2],
          ["cached key p99 ms", (f) => f.latency.cached.p99, 2],
          ["round trip p50 ms", (f) => f.latency.roundTrip.p50, 2],
          ["round trip p99 ms", (f) => f.latency.roundTrip.p99, 2],
          ["added by cached key p50 ms", (f) => f.added.cached.p50, 2],
          ["added by cached key p99 ms", (f) => f.added.cached.p99, 2],
          ["added by round trip p50 ms", (f) => f.added.roundTrip.p50, 2],
          ["added by round trip p99 ms", (f) => f.added.roundTrip.p99, 2],
          [`healthz req/s (${flags.concurrency} clients)`, (f) => f.rps.healthz, 0],
          [`cached key req/s (${flags.concurrency} clients)`, (f) => f.rps.cached, 0],
          [`round trip req/s (${flags.concurrency} clients)`, (f) => f.rps.roundTrip, 0],
          ["req/s cached ÷ round trip", (f) => f.rpsRatio, 2],
        ],
        rounds,
        overall,
      ),
    );
    printJsonSummary(
      { bench: "key-verification", model: "tiny-chat", runtime: RUNTIME, flags },
      machineBefore,
      roundNumbers({ median: overall, rounds }),
    );
  },
  { gateways: 2, perGatewayEnv: [{}, { AUTH_CACHE_TTL_MS: "0" }] },
);
