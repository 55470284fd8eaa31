/**
 * How soon a deleted API key is refused by every gateway, counted from the moment the DELETE returns to the admin
 * who sent it. Each run: a new key is made and used once on each of two gateways (so both hold it in their cache),
 * deleted through the first gateway, then each gateway is polled (`GET /v1/models` with the key, sequentially, as
 * fast as it answers) until it refuses. The figure per gateway includes the poll's own HTTP round trip, so it is an
 * upper bound of the revocation's propagation. See bench/README.md.
 *
 *   pnpm exec tsx bench/revocation.ts [--runs 50]
 */
import { performance } from "node:perf_hooks";
import {
  fixed,
  formatTable,
  interruptible,
  machineInfo,
  median,
  onPlatform,
  parseFlags,
  percentile,
  printJsonSummary,
  progress,
  roundNumbers,
  type BenchRuntime,
} from "./common.js";
import { apiCall } from "../test/support/tenant.js";

const flags = parseFlags({ runs: 50 }, ({ runs }) => (runs < 1 ? "--runs must be at least 1" : undefined));
const RUNTIME: BenchRuntime = { threads: 1, sequences: 4, contextLength: 512 };
/** The bound: refused by every gateway within a second of the DELETE returning. */
const TARGET_MS = 1000;
const GIVE_UP_MS = 10_000;

async function status(baseURL: string, apiKey: string): Promise<number> {
  const response = await fetch(`${baseURL}/models`, { headers: { authorization: `Bearer ${apiKey}` } });
  await response.arrayBuffer();
  return response.status;
}

/** From `since` until `baseURL` refuses the key, polled back to back. */
async function refusedAfter(baseURL: string, apiKey: string, since: number): Promise<number> {
  while (performance.now() - since < GIVE_UP_MS) {
    if ((await status(baseURL, apiKey)) === 401) return performance.now() - since;
  }
  return Number.POSITIVE_INFINITY;
}

const run = interruptible("the current run");
const machineBefore = machineInfo();

await onPlatform(
  run,
  "tiny-chat",
  RUNTIME,
  async ({ stack }) => {
    const gateways = stack.baseURLs;
    const keysPath = `/organization/projects/${stack.projectId}/service_accounts/${stack.serviceAccountId}/api_keys`;
    const delays: number[][] = gateways.map(() => []);
    for (let index = 1; index <= flags.runs; index++) {
      run.stopIfInterrupted();
      const key = (await apiCall(stack.baseURL, stack.adminKey, "POST", keysPath, {
        name: `bench ${index}`,
      })) as {
        id: string;
        value: string;
      };
      stack.secrets.add("key", key.value);
      for (const baseURL of gateways) {
        if ((await status(baseURL, key.value)) !== 200) throw new Error("a new key was refused");
      }
      await apiCall(
        stack.baseURL,
        stack.adminKey,
        "DELETE",
        `/organization/projects/${stack.projectId}/api_keys/${key.id}`,
      );
      const returnedAt = performance.now();
      const measured = await Promise.all(
        gateways.map((baseURL) => refusedAfter(baseURL, key.value, returnedAt)),
      );
      measured.forEach((delay, gateway) => delays[gateway]?.push(delay));
      if (index % 10 === 0) progress(`${index}/${flags.runs} runs`);
    }

    const summary = delays.map((samples, gateway) => ({
      gateway: `gateway-${gateway + 1}`,
      p50: median(samples),
      p99: percentile(samples, 99),
      max: Math.max(...samples),
      withinTarget: samples.filter((delay) => delay <= TARGET_MS).length,
    }));
    console.log(
      formatTable(
        ["", "p50 ms", "p99 ms", "max ms", `within ${TARGET_MS} ms`],
        summary.map((row) => [
          row.gateway,
          fixed(row.p50, 1),
          fixed(row.p99, 1),
          fixed(row.max, 1),
          `${row.withinTarget}/${flags.runs}`,
        ]),
      ),
    );
    printJsonSummary(
      { bench: "revocation", model: "tiny-chat", runtime: RUNTIME, flags },
      machineBefore,
      roundNumbers({ targetMs: TARGET_MS, gateways: summary }),
    );
  },
  { gateways: 2 },
);
