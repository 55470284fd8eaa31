import { createHash } from "node:crypto";
import { createInbox, headers, type Msg, type MsgHdrs, type NatsConnection } from "@nats-io/transport-node";
import { NoRespondersError, RequestError } from "@nats-io/nats-core";
import { z } from "zod";
import { PlatformError } from "@llmaas/contracts";

/**
 * Bodies larger than one NATS message (`max_payload`, 1 MB by default): the sender keeps the encoded body in memory
 * and offers it on an inbox of its own; the message itself carries only a reference (header `Llmaas-Body`), and the
 * receiver pulls the body in chunks, a few at a time, checks its length and SHA-256, and only then decodes it. Nothing
 * is written anywhere: the body lives in the sender's memory until the transfer is over, the request it belongs to
 * has ended, or its deadline has passed, whichever comes first.
 *
 * Protocol `v1`: a pull is a request on the offer's inbox with `{"offset": n, "length": m}`, answered with those
 * bytes; `{"release": true}` ends the offer. A pull that gets no answer in time is asked again, up to
 * `PULL_ATTEMPTS` times; an offer that has gone (its sender left, or gave up) answers "no responders".
 */

export const LARGE_BODY_HEADER = "Llmaas-Body";
const PROTOCOL = "v1";

export const BodyReference = z.object({
  inbox: z.string().min(1),
  length: z.number().int().positive(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  chunkBytes: z.number().int().positive(),
});
export type BodyReference = z.infer<typeof BodyReference>;

const Pull = z.union([
  z.object({ offset: z.number().int().nonnegative(), length: z.number().int().positive() }),
  z.object({ release: z.literal(true) }),
]);

/** Room left in each message for headers (trace context, the reference's own) and the reply subject. */
const HEADROOM_BYTES = 16 * 1024;
/** Chunks pulled at once: enough to keep the pipe full, few enough to bound what is in flight. */
const PULLS_IN_FLIGHT = 4;
const PULL_ATTEMPTS = 3;

export interface TransferOptions {
  /** How long one pull may wait for its chunk. */
  pullTimeoutMs: number;
}

export const DEFAULT_TRANSFER_OPTIONS: TransferOptions = { pullTimeoutMs: 5_000 };

/** What fits in one message of this connection, body and headers together. */
export function inlineLimit(nc: NatsConnection): number {
  const maxPayload = nc.info?.max_payload ?? 1024 * 1024;
  return maxPayload - HEADROOM_BYTES;
}

export function isReference(msg: Msg): boolean {
  return msg.headers?.get(LARGE_BODY_HEADER) === PROTOCOL;
}

/** The headers of a reference message: the given ones (trace context) and the marker. */
export function referenceHeaders(base?: MsgHdrs): MsgHdrs {
  const result = base ?? headers();
  result.set(LARGE_BODY_HEADER, PROTOCOL);
  return result;
}

/** A body on offer: `reference` goes in the message; `withdraw` ends the offer (idempotent). */
export interface BodyOffer {
  reference: BodyReference;
  /** Resolves when the receiver has released the offer, or it was withdrawn or expired. */
  done: Promise<void>;
  withdraw(): void;
}

/** Offers in this process, for tests and for telling what a process still holds. */
let openOffers = 0;
export function openBodyOffers(): number {
  return openOffers;
}

/**
 * Offers `body` on a fresh inbox until the receiver releases it, `withdraw` is called, or `deadlineMs` passes.
 */
export function offerBody(nc: NatsConnection, body: Uint8Array, deadlineMs: number): BodyOffer {
  const inbox = createInbox();
  const chunkBytes = inlineLimit(nc);
  let finish: () => void = () => undefined;
  const done = new Promise<void>((resolve) => {
    finish = resolve;
  });
  openOffers++;
  let open = true;
  const subscription = nc.subscribe(inbox, {
    callback: (err, msg) => {
      if (err) return;
      const pull = Pull.safeParse(safeJson(msg.data));
      if (!pull.success) return;
      if ("release" in pull.data) {
        withdraw();
        msg.respond();
        return;
      }
      const { offset, length } = pull.data;
      if (length > chunkBytes || offset >= body.length) return;
      msg.respond(body.subarray(offset, offset + length));
    },
  });
  const timer = setTimeout(() => withdraw(), deadlineMs);
  timer.unref();
  function withdraw(): void {
    if (!open) return;
    open = false;
    openOffers--;
    clearTimeout(timer);
    subscription.unsubscribe();
    finish();
  }
  const sha256 = createHash("sha256").update(body).digest("hex");
  return { reference: { inbox, length: body.length, sha256, chunkBytes }, done, withdraw };
}

/**
 * Pulls a body on offer, `PULLS_IN_FLIGHT` chunks at a time, into one buffer of the announced length, and checks it
 * against the announced hash. Releases the offer when done. A transfer that cannot complete (the sender has gone, a
 * chunk never comes, the bytes do not match) is a PlatformError; nothing of it is kept.
 */
export async function fetchBody(
  nc: NatsConnection,
  reference: BodyReference,
  options: TransferOptions = DEFAULT_TRANSFER_OPTIONS,
): Promise<Uint8Array> {
  const body = new Uint8Array(reference.length);
  const offsets: number[] = [];
  for (let offset = 0; offset < reference.length; offset += reference.chunkBytes) offsets.push(offset);
  let next = 0;
  const pullChunks = async (): Promise<void> => {
    while (next < offsets.length) {
      const offset = offsets[next++] as number;
      const length = Math.min(reference.chunkBytes, reference.length - offset);
      const chunk = await pull(nc, reference.inbox, offset, length, options.pullTimeoutMs);
      if (chunk.length !== length) throw transferFailed("a chunk of the wrong length arrived");
      body.set(chunk, offset);
    }
  };
  await Promise.all(Array.from({ length: Math.min(PULLS_IN_FLIGHT, offsets.length) }, pullChunks));
  if (createHash("sha256").update(body).digest("hex") !== reference.sha256) {
    throw transferFailed("the body does not match its hash");
  }
  // The sender may drop the body now; if this is lost, its deadline does the same.
  nc.publish(reference.inbox, encodeJson({ release: true }));
  return body;
}

async function pull(
  nc: NatsConnection,
  inbox: string,
  offset: number,
  length: number,
  timeoutMs: number,
): Promise<Uint8Array> {
  for (let attempt = 1; ; attempt++) {
    try {
      const reply = await nc.request(inbox, encodeJson({ offset, length }), { timeout: timeoutMs });
      return reply.data;
    } catch (error) {
      const noResponders =
        error instanceof NoRespondersError || (error instanceof RequestError && error.isNoResponders());
      if (noResponders) throw transferFailed("its sender is gone");
      if (attempt >= PULL_ATTEMPTS) throw transferFailed(`a chunk did not arrive after ${attempt} attempts`);
    }
  }
}

function transferFailed(why: string): PlatformError {
  return new PlatformError("service_unavailable", `A message body could not be transferred: ${why}.`);
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function encodeJson(value: unknown): Uint8Array {
  return encoder.encode(JSON.stringify(value));
}

function safeJson(data: Uint8Array): unknown {
  try {
    return JSON.parse(decoder.decode(data));
  } catch {
    return undefined;
  }
}
