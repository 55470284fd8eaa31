/**
 * What quota enforcement costs on the full path: the same authenticated inference request sent to two gateways of
 * one platform, side by side:
 *   E  a gateway with `QUOTAS=enforced` (the default): each request is admitted in memory from leases that `auth`
 *      grants over NATS (`quota.v1.lease`, only when a lease runs short), and settled when its usage comes back;
 *   O  a gateway with `QUOTAS=off`: no admission, no settlement, no `x-ratelimit-*` headers.
 * Routes: `POST /v1/chat/completions` (tiny-chat, a short prompt, `max_tokens: 1`, temperature 0, so generation is
 * negligible and the fixed path dominates) and, unless `--embeddings 0`, `POST /v1/embeddings` (tiny-embed, one
 * short input). Latency: sequential requests, E and O alternating (which of the two goes first alternates too),
 * `--requests` of each per round. Throughput: `--clients` clients in a closed loop for `--seconds` on each path in
 * turn, the order rotated each round. Every figure is the median over `--rounds` rounds. The `quota.v1.lease`
 * messages the enforced gateway sends are counted on a NATS subscription of the bench's own, per 1000 of its
 * requests. See bench/README.md.
 *
 *   pnpm exec tsx bench/quotas.ts [--requests 300] [--rounds 5] [--clients 16] [--seconds 3] [--warmup 100]
 *                                 [--embeddings 1]
 */
import { performance } from "node:perf_hooks";
import { quotaLease, quotaReport } from "@llmaas/contracts";
import { connectTestBus } from "../test/support/bus.js";
import {
  fixed,
  formatTable,
  interruptible,
  machineInfo,
  MODEL_ID,
  medianOfEach,
  onPlatform,
  parseFlags,
  percentile,
  printJsonSummary,
  progress,
  PROMPT,
  roundNumbers,
  roundsTable,
  SEED,
  type BenchRuntime,
  type RoundRow,
} from "./common.js";

const flags = parseFlags(
  { requests: 300, rounds: 5, clients: 16, seconds: 3, warmup: 100, embeddings: 1 },
  ({ requests, rounds, clients, seconds, embeddings }) =>
    requests < 10 || rounds < 1 || clients < 1 || seconds < 1 || embeddings > 1
      ? "--requests must be at least 10, --rounds, --clients and --seconds at least 1, --embeddings 0 or 1"
      : undefined,
);
const RUNTIME: BenchRuntime = { threads: 1, sequences: 4, contextLength: 512 };
const EMBED_MODEL_ID = "tiny-embed";
/**
 * The project's default rate limits (10,000 requests and 10M tokens a minute per model, services/auth/src/config.ts)
 * raised for this platform, so that no rate the bench reaches can be refused. It changes nothing else: a grant is
 * capped at a quarter of what is left of the limit, 2,500 requests under the default, far above what a gateway asks
 * for here (its waiting requests plus 8 more), so leases have the same size under either limit.
 */
const AUTH_ENV = {
  DEFAULT_MAX_REQUESTS_PER_1_MINUTE: "100000000",
  DEFAULT_MAX_TOKENS_PER_1_MINUTE: "100000000000",
};

type Side = "enforced" | "off";
type Route = "chat" | "embeddings";
type PathName = `${Route}:${Side}`;

interface Target {
  route: Route;
  side: Side;
  url: string;
  body: string;
}

/** What every response is checked for; a bench whose responses were not these measured something else. */
class Checks {
  responses = 0;
  non200 = 0;
  /** E without `x-ratelimit-limit-requests`, or O with it. */
  wrongHeaders = 0;
  /** A chat answer without exactly 1 completion token, or an embedding without a vector. */
  wrongWork = 0;
  private warnings = 0;

  warn(message: string): void {
    if (this.warnings++ < 5) progress(`WARNING ${message}`);
  }

  get allHeld(): boolean {
    return this.non200 === 0 && this.wrongHeaders === 0 && this.wrongWork === 0;
  }
}

const checks = new Checks();

async function send(target: Target, apiKey: string): Promise<number> {
  const start = performance.now();
  const response = await fetch(target.url, {
    method: "POST",
    headers: { authorization: `Bearer ${apiKey}`, "content-type": "application/json" },
    body: target.body,
  });
  const text = await response.text();
  const ms = performance.now() - start;
  checks.responses++;
  if (response.status !== 200) {
    checks.non200++;
    checks.warn(`${target.route} ${target.side}: ${response.status} ${text.slice(0, 300)}`);
    return ms;
  }
  const hasHeader = response.headers.has("x-ratelimit-limit-requests");
  if (hasHeader !== (target.side === "enforced")) {
    checks.wrongHeaders++;
    checks.warn(
      `${target.route} ${target.side}: x-ratelimit-limit-requests ${hasHeader ? "present" : "missing"}`,
    );
  }
  const json = JSON.parse(text) as {
    usage?: { completion_tokens?: number };
    data?: { embedding?: unknown }[];
  };
  const rightWork =
    target.route === "chat"
      ? json.usage?.completion_tokens === 1
      : Array.isArray(json.data?.[0]?.embedding) && json.data[0].embedding.length > 0;
  if (!rightWork) {
    checks.wrongWork++;
    checks.warn(`${target.route} ${target.side}: unexpected answer ${text.slice(0, 300)}`);
  }
  return ms;
}

/** The `quota.v1.lease` (and `quota.v1.report`) messages on the bus, seen by a subscription of the bench's own. */
class LeaseTally {
  leaseMessages = 0;
  leaseAsks = 0;
  reportMessages = 0;
  readonly gatewayIds = new Set<string>();

  onLease(body: { gatewayId: string; asks: unknown[] }): void {
    this.leaseMessages++;
    this.leaseAsks += body.asks.length;
    this.gatewayIds.add(body.gatewayId);
  }

  snapshot(): { leaseMessages: number; leaseAsks: number; reportMessages: number } {
    return {
      leaseMessages: this.leaseMessages,
      leaseAsks: this.leaseAsks,
      reportMessages: this.reportMessages,
    };
  }
}

interface LatencyFigures {
  p50: number;
  p99: number;
}

function latencyFigures(samples: number[]): LatencyFigures {
  return { p50: percentile(samples, 50), p99: percentile(samples, 99) };
}

interface RouteFigures {
  enforced: LatencyFigures;
  off: LatencyFigures;
  /** E's percentile minus O's (p50 minus p50, p99 minus p99). */
  added: LatencyFigures;
  rpsEnforced: number;
  rpsOff: number;
  /** Requests per second enforced ÷ off. */
  rpsRatio: number;
  /** E's p50 ÷ O's p50. */
  p50Ratio: number;
  /** Sequential E requests admitted from the leases in memory (no `quota.v1.lease` sent meanwhile): their p50. */
  inMemoryP50: number;
  /** Sequential E requests during which a `quota.v1.lease` message was sent: their p50, and their share. */
  withAskP50: number;
  withAskShare: number;
}

interface RoundFigures {
  chat: RouteFigures;
  embeddings?: RouteFigures;
  /** `quota.v1.lease` messages per 1000 requests of the enforced gateway, sequential (latency) and under load. */
  leasesPer1000: { sequential: number; loaded: number };
}

const run = interruptible("the current round");
const machineBefore = machineInfo();

await onPlatform(
  run,
  "tiny-chat",
  RUNTIME,
  async ({ stack }) => {
    const [enforcedURL, offURL] = stack.baseURLs;
    if (!enforcedURL || !offURL) throw new Error("the bench needs two gateways");
    const bodies: Record<Route, string> = {
      chat: JSON.stringify({
        model: MODEL_ID,
        messages: PROMPT,
        max_tokens: 1,
        temperature: 0,
        seed: SEED,
      }),
      embeddings: JSON.stringify({
        model: EMBED_MODEL_ID,
        input: "The lighthouse keeper watched the storm roll over the harbour.",
      }),
    };
    const routes: Route[] = flags.embeddings ? ["chat", "embeddings"] : ["chat"];
    const targets = new Map<PathName, Target>();
    for (const route of routes) {
      const path = route === "chat" ? "/chat/completions" : "/embeddings";
      targets.set(`${route}:enforced`, {
        route,
        side: "enforced",
        url: `${enforcedURL}${path}`,
        body: bodies[route],
      });
      targets.set(`${route}:off`, { route, side: "off", url: `${offURL}${path}`, body: bodies[route] });
    }
    const target = (path: PathName): Target => {
      const found = targets.get(path);
      if (!found) throw new Error(`no target ${path}`);
      return found;
    };
    const paths = [...targets.keys()];
    const apiKey = stack.apiKey;

    // A connection of the bench's own in the platform's namespace; drained only, the stack owns the streams.
    const { bus } = await connectTestBus(stack.namespace);
    const tally = new LeaseTally();
    bus.nc.subscribe(bus.subject(quotaLease.subject), {
      callback: (_error, msg) => tally.onLease(msg.json<{ gatewayId: string; asks: unknown[] }>()),
    });
    bus.nc.subscribe(bus.subject(quotaReport.subject), {
      callback: () => {
        tally.reportMessages++;
      },
    });
    await bus.nc.flush();
    /** Lease messages since `from`, once what the gateway sent before now has reached this connection. */
    const leasesSince = async (from: ReturnType<LeaseTally["snapshot"]>): Promise<number> => {
      await bus.nc.flush();
      await new Promise((resolve) => setTimeout(resolve, 20));
      return tally.leaseMessages - from.leaseMessages;
    };

    try {
      for (let index = 0; index < flags.warmup; index++) {
        run.stopIfInterrupted();
        for (const path of paths) await send(target(path), apiKey);
      }
      progress(`warmed up with ${flags.warmup} requests of each path`);
      const start = tally.snapshot();
      const checkedBefore = checks.responses;

      const rounds: RoundFigures[] = [];
      let enforcedRequests = { sequential: 0, loaded: 0 };
      let leaseMessages = { sequential: 0, loaded: 0 };
      for (let round = 1; round <= flags.rounds; round++) {
        const samples = new Map<PathName, number[]>(paths.map((path) => [path, []]));
        /** E's sequential requests during which the gateway sent a `quota.v1.lease` message, and the others. */
        const leased = new Map<Route, { withAsk: number[]; inMemory: number[] }>(
          routes.map((route) => [route, { withAsk: [], inMemory: [] }]),
        );
        const beforeLatency = tally.snapshot();
        for (let index = 0; index < flags.requests; index++) {
          run.stopIfInterrupted();
          for (const route of routes) {
            // Which side goes first alternates, so that neither always follows the other's request.
            const sides: Side[] = index % 2 === 0 ? ["enforced", "off"] : ["off", "enforced"];
            for (const side of sides) {
              const path: PathName = `${route}:${side}`;
              const asksBefore = tally.leaseMessages;
              const ms = await send(target(path), apiKey);
              samples.get(path)?.push(ms);
              // The ask reaches this connection before auth has answered it, so before the response.
              if (side === "enforced") {
                const split = leased.get(route);
                (tally.leaseMessages > asksBefore ? split?.withAsk : split?.inMemory)?.push(ms);
              }
            }
          }
        }
        const sequentialLeases = await leasesSince(beforeLatency);
        const sequentialRequests = flags.requests * routes.length;

        const rps = new Map<PathName, number>();
        let loadedLeases = 0;
        let loadedRequests = 0;
        // Rotated, so that no path always runs first (or last) while the machine warms up or cools down.
        const order = paths.map((_, i) => paths[(i + round) % paths.length] as PathName);
        for (const path of order) {
          run.stopIfInterrupted();
          const before = tally.snapshot();
          const { completed, perSecond } = await throughput(target(path), apiKey);
          rps.set(path, perSecond);
          if (target(path).side === "enforced") {
            loadedLeases += await leasesSince(before);
            loadedRequests += completed;
          }
        }
        enforcedRequests = {
          sequential: enforcedRequests.sequential + sequentialRequests,
          loaded: enforcedRequests.loaded + loadedRequests,
        };
        leaseMessages = {
          sequential: leaseMessages.sequential + sequentialLeases,
          loaded: leaseMessages.loaded + loadedLeases,
        };

        const routeFigures = (route: Route): RouteFigures => {
          const enforced = latencyFigures(samples.get(`${route}:enforced`) ?? []);
          const off = latencyFigures(samples.get(`${route}:off`) ?? []);
          const rpsEnforced = rps.get(`${route}:enforced`) ?? Number.NaN;
          const rpsOff = rps.get(`${route}:off`) ?? Number.NaN;
          const split = leased.get(route) ?? { withAsk: [], inMemory: [] };
          return {
            enforced,
            off,
            inMemoryP50: percentile(split.inMemory, 50),
            withAskP50: percentile(split.withAsk, 50),
            withAskShare: split.withAsk.length / (split.withAsk.length + split.inMemory.length),
            added: { p50: enforced.p50 - off.p50, p99: enforced.p99 - off.p99 },
            rpsEnforced,
            rpsOff,
            rpsRatio: rpsEnforced / rpsOff,
            p50Ratio: enforced.p50 / off.p50,
          };
        };
        const figures: RoundFigures = {
          chat: routeFigures("chat"),
          ...(flags.embeddings ? { embeddings: routeFigures("embeddings") } : {}),
          leasesPer1000: {
            sequential: (sequentialLeases / sequentialRequests) * 1000,
            loaded: (loadedLeases / loadedRequests) * 1000,
          },
        };
        rounds.push(figures);
        progress(
          `round ${round}/${flags.rounds}: chat p50 ${fixed(figures.chat.enforced.p50)} vs ` +
            `${fixed(figures.chat.off.p50)} ms, ${fixed(figures.chat.rpsEnforced, 0)} vs ` +
            `${fixed(figures.chat.rpsOff, 0)} req/s; ${sequentialLeases} + ${loadedLeases} lease messages`,
        );
      }
      const end = tally.snapshot();

      const overall = medianOfEach(rounds);
      const routeRows = (route: Route, label: string): RoundRow<RoundFigures>[] => {
        const pick = (round: RoundFigures): RouteFigures =>
          (route === "chat" ? round.chat : round.embeddings) as RouteFigures;
        return [
          [`${label} enforced p50 ms`, (f) => pick(f).enforced.p50, 2],
          [`${label} off p50 ms`, (f) => pick(f).off.p50, 2],
          [`${label} enforced p99 ms`, (f) => pick(f).enforced.p99, 2],
          [`${label} off p99 ms`, (f) => pick(f).off.p99, 2],
          [`${label} added p50 ms (E-O)`, (f) => pick(f).added.p50, 2],
          [`${label} added p99 ms (E-O)`, (f) => pick(f).added.p99, 2],
          [`${label} p50 E ÷ O`, (f) => pick(f).p50Ratio, 2],
          [`${label} E p50 ms, admitted in memory`, (f) => pick(f).inMemoryP50, 2],
          [`${label} E p50 ms, with a lease ask`, (f) => pick(f).withAskP50, 2],
          [`${label} E share with a lease ask`, (f) => pick(f).withAskShare, 2],
          [`${label} enforced req/s (${flags.clients} clients)`, (f) => pick(f).rpsEnforced, 0],
          [`${label} off req/s (${flags.clients} clients)`, (f) => pick(f).rpsOff, 0],
          [`${label} req/s E ÷ O`, (f) => pick(f).rpsRatio, 2],
        ];
      };
      console.log(
        roundsTable<RoundFigures>(
          [
            ...routeRows("chat", "chat"),
            ...(flags.embeddings ? routeRows("embeddings", "embeddings") : []),
            ["lease msgs / 1000 E req, sequential", (f) => f.leasesPer1000.sequential, 1],
            [`lease msgs / 1000 E req, ${flags.clients} clients`, (f) => f.leasesPer1000.loaded, 1],
          ],
          rounds,
          overall,
        ),
      );
      const measured = checks.responses - checkedBefore;
      const leases = {
        enforcedRequests,
        leaseMessages,
        per1000: {
          sequential: (leaseMessages.sequential / enforcedRequests.sequential) * 1000,
          loaded: (leaseMessages.loaded / enforcedRequests.loaded) * 1000,
        },
        askedCounters: end.leaseAsks - start.leaseAsks,
        reportMessages: end.reportMessages - start.reportMessages,
        gatewaysThatAsked: tally.gatewayIds.size,
      };
      console.log("");
      console.log(
        formatTable(
          ["quota.v1.lease, all rounds", "E requests", "lease messages", "per 1000"],
          [
            [
              "sequential",
              String(enforcedRequests.sequential),
              String(leaseMessages.sequential),
              fixed(leases.per1000.sequential, 1),
            ],
            [
              `${flags.clients} clients`,
              String(enforcedRequests.loaded),
              String(leaseMessages.loaded),
              fixed(leases.per1000.loaded, 1),
            ],
          ],
        ),
      );
      console.log(
        `\nChecks, ${checks.responses} responses (${measured} measured): all 200: ` +
          `${checks.non200 === 0 ? "yes" : `no (${checks.non200} not)`}; ` +
          `x-ratelimit-limit-requests on every enforced answer and on no unenforced one: ` +
          `${checks.wrongHeaders === 0 ? "yes" : `no (${checks.wrongHeaders} wrong)`}; ` +
          `expected work (1 completion token / a vector): ` +
          `${checks.wrongWork === 0 ? "yes" : `no (${checks.wrongWork} not)`}. ` +
          `Gateways that sent quota.v1.lease: ${leases.gatewaysThatAsked} (expected 1, the enforced one); ` +
          `quota.v1.report messages during the rounds: ${leases.reportMessages}.`,
      );
      printJsonSummary(
        { bench: "quotas", model: MODEL_ID, runtime: RUNTIME, flags },
        machineBefore,
        roundNumbers({
          checks: {
            responses: checks.responses,
            non200: checks.non200,
            wrongHeaders: checks.wrongHeaders,
            wrongWork: checks.wrongWork,
            allHeld: checks.allHeld,
          },
          leases,
          median: overall,
          rounds,
        }),
      );
    } finally {
      await bus.drain();
    }
  },
  { gateways: 2, perGatewayEnv: [{ QUOTAS: "enforced" }, { QUOTAS: "off" }], authEnv: AUTH_ENV },
);

/**
 * Requests per second that `--clients` clients, each sending its next request when the last one returns, get on
 * one path for `--seconds`.
 */
async function throughput(target: Target, apiKey: string): Promise<{ completed: number; perSecond: number }> {
  const end = performance.now() + flags.seconds * 1000;
  let completed = 0;
  const client = async (): Promise<void> => {
    while (performance.now() < end) {
      await send(target, apiKey);
      completed++;
    }
  };
  const start = performance.now();
  await Promise.all(Array.from({ length: flags.clients }, client));
  return { completed, perSecond: completed / ((performance.now() - start) / 1000) };
}
