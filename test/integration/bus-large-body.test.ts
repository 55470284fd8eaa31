// Bodies larger than one NATS message (max_payload) cross the bus: a 5 MB request and a 20 MB reply arrive intact
// through the ordinary request/serve API; a chunk lost on the way is asked for again; a sender that goes away, a
// corrupted or short chunk, and an offer nobody pulls all end cleanly, as errors, with nothing left on offer.
import t from "tap";
import { createHash, randomBytes } from "node:crypto";
import { z } from "zod";
import { createInbox } from "@nats-io/transport-node";
import { fetchBody, offerBody, openBodyOffers, type BodyReference } from "@llmaas/bus";
import { requestSubject } from "@llmaas/contracts";
import { connectTestBus } from "../support/bus.js";

const sender = await connectTestBus();
t.teardown(sender.close);
// Another connection in the same namespace, as another process would have.
const receiver = await connectTestBus(sender.namespace);
t.teardown(receiver.close);

const echo = requestSubject(
  "test.v1.large.echo",
  z.object({ text: z.string(), replyBytes: z.number().int().nonnegative() }),
  z.object({ receivedSha256: z.string(), reply: z.string() }),
);

const sha256 = (data: string | Uint8Array) => createHash("sha256").update(data).digest("hex");
const maxPayload = sender.bus.nc.info?.max_payload ?? 0;

void t.test("a 5 MB request and a 20 MB reply through request/serve", async (t) => {
  t.ok(maxPayload > 0 && maxPayload < 5_000_000, `the server's max_payload is ${maxPayload} bytes`);
  const subscription = receiver.bus.serve(echo, echo.subject, async ({ text, replyBytes }) => ({
    receivedSha256: sha256(text),
    reply: "r".repeat(replyBytes - 1) + "!",
  }));
  await receiver.bus.flush();
  const text = randomBytes(3_750_000).toString("base64");
  const answer = await sender.bus.request(
    echo,
    echo.subject,
    { text, replyBytes: 20_000_000 },
    { timeoutMs: 30_000 },
  );
  t.equal(answer.receivedSha256, sha256(text), `the server received all ${text.length} characters`);
  t.equal(answer.reply.length, 20_000_000, "the requester received the 20 MB reply");
  t.ok(answer.reply.endsWith("!"), "to its last byte");
  await offersGone();
  t.equal(openBodyOffers(), 0, "neither side keeps anything on offer once the reply is pulled");
  subscription.unsubscribe();
});

/** The release of a reply's offer travels back as a message of its own: waits (briefly) for it to arrive. */
async function offersGone(): Promise<void> {
  for (let tries = 0; tries < 100 && openBodyOffers() > 0; tries++) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** A holder of its own on an inbox, to misbehave in ways a real sender does not. */
function fakeHolder(
  body: Uint8Array,
  chunkBytes: number,
  answer: (offset: number, attempt: number) => Uint8Array | "silent" | "gone",
) {
  const inbox = createInbox();
  const attempts = new Map<number, number>();
  const subscription = sender.bus.nc.subscribe(inbox, {
    callback: (_error, msg) => {
      const pull = msg.json<{ offset?: number; release?: boolean }>();
      if (pull.release || pull.offset === undefined) return;
      const attempt = (attempts.get(pull.offset) ?? 0) + 1;
      attempts.set(pull.offset, attempt);
      const outcome = answer(pull.offset, attempt);
      if (outcome === "gone") subscription.unsubscribe();
      else if (outcome !== "silent") msg.respond(outcome);
    },
  });
  const reference: BodyReference = { inbox, length: body.length, sha256: sha256(body), chunkBytes };
  return { reference, attempts, close: () => subscription.unsubscribe() };
}

const CHUNK = 64 * 1024;
const body = randomBytes(5 * CHUNK + 123);
const slice = (offset: number) => body.subarray(offset, offset + CHUNK);
const fast = { pullTimeoutMs: 200 };

void t.test("a chunk lost on the way is asked for again", async (t) => {
  const holder = fakeHolder(body, CHUNK, (offset, attempt) =>
    offset === 2 * CHUNK && attempt === 1 ? "silent" : slice(offset),
  );
  await sender.bus.flush();
  const received = await fetchBody(receiver.bus.nc, holder.reference, fast);
  t.equal(sha256(received), sha256(body), "the body arrives whole");
  t.equal(holder.attempts.get(2 * CHUNK), 2, "the lost chunk was pulled twice");
  holder.close();
});

void t.test(
  "a sender gone mid-transfer, a chunk never sent, corrupted or short: a clean error",
  async (t) => {
    const cases: [string, Parameters<typeof fakeHolder>[2], RegExp][] = [
      ["gone", (offset) => (offset >= 2 * CHUNK ? "gone" : slice(offset)), /sender is gone/],
      [
        "silent",
        (offset) => (offset === CHUNK ? "silent" : slice(offset)),
        /did not arrive after 3 attempts/,
      ],
      [
        "corrupted",
        (offset) => (offset === 3 * CHUNK ? Buffer.from(slice(offset)).fill(0, 0, 10) : slice(offset)),
        /does not match its hash/,
      ],
      ["short", (offset) => slice(offset).subarray(1), /wrong length/],
    ];
    for (const [name, answer, message] of cases) {
      const holder = fakeHolder(body, CHUNK, answer);
      await sender.bus.flush();
      await t.rejects(
        fetchBody(receiver.bus.nc, holder.reference, fast),
        { code: "service_unavailable", message },
        `${name}: refused as an unavailable transfer`,
      );
      holder.close();
    }
  },
);

void t.test("an offer nobody pulls ends at its deadline; a withdrawn one at once", async (t) => {
  const expiring = offerBody(sender.bus.nc, body, 100);
  const withdrawn = offerBody(sender.bus.nc, body, 60_000);
  t.equal(openBodyOffers(), 2);
  withdrawn.withdraw();
  await expiring.done;
  t.equal(openBodyOffers(), 0, "nothing left on offer");
  await t.rejects(fetchBody(receiver.bus.nc, expiring.reference, fast), { message: /sender is gone/ });
});

void t.test("a request whose handler fails after pulling leaves nothing on offer either", async (t) => {
  const failing = requestSubject("test.v1.large.fail", z.object({ text: z.string() }), z.object({}));
  const subscription = receiver.bus.serve(failing, failing.subject, async () => {
    throw new Error("boom");
  });
  await receiver.bus.flush();
  await t.rejects(
    sender.bus.request(failing, failing.subject, { text: "x".repeat(3_000_000) }, { timeoutMs: 10_000 }),
    { code: "internal_error" },
  );
  await offersGone();
  t.equal(openBodyOffers(), 0);
  subscription.unsubscribe();
});
