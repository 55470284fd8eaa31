/**
 * How fast a large body crosses the bus (docs/decisions.md, "Large bodies are pulled from their sender's memory"):
 * a 25 MB request, pulled in chunks by the serving side, against the same 25 MB sent as single messages of just
 * under `max_payload` (the most one message can carry), in the same run. Two connections in this process, one
 * sending and one serving, as two services would have; NATS from `NATS_URL`.
 *
 *   pnpm exec tsx bench/large-body.ts                 # 25 MB, 5 rounds
 *   pnpm exec tsx bench/large-body.ts --mb 25 --rounds 5
 */
import { parseArgs } from "node:util";
import { randomBytes } from "node:crypto";
import { z } from "zod";
import { Bus } from "@llmaas/bus";
import { requestSubject } from "@llmaas/contracts";
import { createLogger } from "@llmaas/telemetry";
import { median } from "./common.js";

const { values } = parseArgs({
  options: { mb: { type: "string", default: "25" }, rounds: { type: "string", default: "5" } },
});
const megabytes = Number(values.mb);
const rounds = Number(values.rounds);
const natsUrl = process.env.NATS_URL ?? "nats://127.0.0.1:4222";
const namespace = `bench_${randomBytes(4).toString("hex")}`;
const logger = createLogger({ service: "bench", instanceId: "bench", level: "silent" });

const sender = await Bus.connect({ servers: natsUrl, name: "bench-sender", logger, namespace });
const server = await Bus.connect({ servers: natsUrl, name: "bench-server", logger, namespace });
const maxPayload = sender.nc.info?.max_payload ?? 1024 * 1024;

const upload = requestSubject(
  "bench.v1.upload",
  z.object({ data: z.string() }),
  z.object({ bytes: z.number() }),
);
server.serve(upload, upload.subject, async ({ data }) => ({ bytes: data.length }));
await server.flush();

const total = megabytes * 1_000_000;
// Base64 text, so that the JSON body is the payload's size plus a few bytes.
const body = randomBytes(Math.ceil((total * 3) / 4))
  .toString("base64")
  .slice(0, total);
// The single-message reference: pieces that each fit in one message with their envelope.
const pieceChars = maxPayload - 16 * 1024;
const pieces = Array.from({ length: Math.ceil(total / pieceChars) }, (_, index) =>
  body.slice(index * pieceChars, (index + 1) * pieceChars),
);

async function timed(run: () => Promise<void>): Promise<number> {
  const started = process.hrtime.bigint();
  await run();
  return Number(process.hrtime.bigint() - started) / 1e6;
}

const large: number[] = [];
const single: number[] = [];
// Warm-up of both paths.
await sender.request(upload, upload.subject, { data: body }, { timeoutMs: 60_000 });
for (const piece of pieces.slice(0, 4)) {
  await sender.request(upload, upload.subject, { data: piece }, { timeoutMs: 60_000 });
}
for (let round = 0; round < rounds; round++) {
  const order = round % 2 === 0 ? ["large", "single"] : ["single", "large"];
  for (const path of order) {
    if (path === "large") {
      large.push(
        await timed(async () => {
          const reply = await sender.request(upload, upload.subject, { data: body }, { timeoutMs: 60_000 });
          if (reply.bytes !== total) throw new Error(`the server received ${reply.bytes} bytes`);
        }),
      );
    } else {
      single.push(
        await timed(async () => {
          // One message after another, each answered: the same request/reply pattern, without chunking.
          for (const piece of pieces) {
            await sender.request(upload, upload.subject, { data: piece }, { timeoutMs: 60_000 });
          }
        }),
      );
    }
  }
  console.log(
    `round ${round + 1}/${rounds}: one ${megabytes} MB body ${large.at(-1)?.toFixed(0)} ms, ` +
      `${pieces.length} single messages ${single.at(-1)?.toFixed(0)} ms`,
  );
}

const mbPerSecond = (ms: number) => megabytes / (ms / 1000);
const largeMedian = median(large);
const singleMedian = median(single);
console.log(`
median of ${rounds} rounds (max_payload ${maxPayload} bytes)
  one ${megabytes} MB body, pulled in chunks:      ${largeMedian.toFixed(0)} ms, ${mbPerSecond(largeMedian).toFixed(0)} MB/s
  ${pieces.length} single messages of ${(pieceChars / 1e6).toFixed(2)} MB:  ${singleMedian.toFixed(0)} ms, ${mbPerSecond(singleMedian).toFixed(0)} MB/s
  chunked ÷ single messages (throughput):   ${(singleMedian / largeMedian).toFixed(2)}`);

await sender.drain();
await server.drain();
