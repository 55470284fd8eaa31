import type { Kysely } from "kysely";
import type { ConsumerMessages, JsMsg } from "@nats-io/jetstream";
import { ensureDurableConsumer, ensureStream, type Bus } from "@llmaas/bus";
import type { Catalogue } from "@llmaas/catalogue";
import { usageStream } from "@llmaas/contracts";
import type { MeteringDatabase } from "@llmaas/db";
import type { Logger } from "@llmaas/telemetry";
import type { DeadLetters } from "./dead-letters.js";
import { isTransient } from "./failures.js";
import { priceEvent } from "./pricing.js";
import { recordUsage, type PricedUsageEvent, type RecordResult } from "./record.js";
import { StoredUsageEvent } from "../usage-versions.js";

export const METERING_CONSUMER = "metering";

export interface IngestOptions {
  bus: Bus;
  db: Kysely<MeteringDatabase>;
  logger: Logger;
  catalogue: Catalogue;
  currency: string;
  deadLetters: DeadLetters;
  /** Events written per transaction at most. */
  batchSize: number;
  /** Batches written at once by this instance. */
  writers: number;
  /** How long a batch that is not full waits for more events before it is written: latency against batch size. */
  lingerMs: number;
  /** A delivered message not acknowledged within this time is delivered again (to any instance). */
  ackWaitMs: number;
  /** A message whose write keeps failing on its own is dead-lettered at this delivery. */
  maxDeliveries: number;
  /** Events that ended before this are refused: their raw rows may be gone, so a duplicate would count twice. */
  acceptsFinishedAfter: () => Date;
  /** After a write failed because the database was unreachable, when the batch is tried again. */
  retryDelayMs: number;
  /** Called after each commit that recorded something new (the outbox publisher listens). */
  onCommitted: (result: RecordResult) => void;
}

export interface Ingest {
  /** Writes what it holds (or leaves it for redelivery) and stops consuming. */
  stop(): Promise<void>;
}

interface Delivery {
  msg: JsMsg;
  priced: PricedUsageEvent;
}

/**
 * Consumes usage events through one durable consumer shared by every metering instance. Messages arrive as they are
 * published; a batch is written as soon as it is full or `lingerMs` after its first message, in one transaction, and
 * acknowledged only after the commit. A crash before the ack means redelivery, which the idempotent write absorbs.
 *
 * A failing batch is split to find the message at fault: the others are written, and that one is retried until its
 * `maxDeliveries`-th delivery, then dead-lettered. A message that can never be written (malformed, unpriced, too
 * old) is dead-lettered at once. An unreachable database fails nothing: the batch waits and is tried again.
 */
export async function startIngest(options: IngestOptions): Promise<Ingest> {
  const { bus, db, logger, batchSize, lingerMs } = options;
  const streamName = await ensureStream(bus, usageStream);
  const consumer = await ensureDurableConsumer(bus, streamName, {
    durableName: METERING_CONSUMER,
    ackWaitMs: options.ackWaitMs,
    // Enough for every writer of two instances plus a batch arriving; it bounds what all instances hold unacked.
    maxAckPending: batchSize * (options.writers + 1) * 2,
  });

  const queue: JsMsg[] = [];
  let wake: (() => void) | undefined;
  const messages: ConsumerMessages = await consumer.consume({
    max_messages: batchSize * 2,
    callback: (msg) => {
      queue.push(msg);
      wake?.();
    },
  });

  let running = true;
  const waitForMessages = (ms: number | undefined): Promise<void> =>
    new Promise((resolve) => {
      const timer = ms === undefined ? undefined : setTimeout(done, ms);
      function done(): void {
        clearTimeout(timer);
        wake = undefined;
        resolve();
      }
      wake = done;
    });

  // Up to `writers` batches are written at once, so the next batch is parsed and priced while the database commits
  // the previous one. Concurrent transactions are safe: they take their locks in the same order (see recordUsage).
  const inFlight = new Set<Promise<void>>();
  const loop = (async () => {
    while (running) {
      if (queue.length === 0) await waitForMessages(undefined);
      if (!running) break;
      // Linger only while the batch can still grow; every message resets nothing, so the wait is bounded.
      const lingerEnds = Date.now() + lingerMs;
      while (running && queue.length < batchSize && Date.now() < lingerEnds) {
        await waitForMessages(lingerEnds - Date.now());
      }
      const batch = queue.splice(0, batchSize);
      const writing = writeBatch(batch)
        .catch((error: unknown) => {
          // writeBatch handles its own failures; this is a bug, and the messages come back after the ack wait.
          logger.error({ err: error }, "usage batch handling failed");
        })
        .finally(() => inFlight.delete(writing));
      inFlight.add(writing);
      if (inFlight.size >= options.writers) await Promise.race(inFlight);
    }
    await Promise.all(inFlight);
  })();

  async function writeBatch(batch: JsMsg[]): Promise<void> {
    const deliveries: Delivery[] = [];
    const horizon = options.acceptsFinishedAfter();
    for (const msg of batch) {
      const parsed = StoredUsageEvent.safeParse(safeJson(msg));
      if (!parsed.success) {
        await options.deadLetters.add(msg, "the message does not match the usage event schema");
        continue;
      }
      if (Date.parse(parsed.data.finishedAt) < horizon.getTime()) {
        await options.deadLetters.add(
          msg,
          `the request ended ${parsed.data.finishedAt}, before the raw-event retention horizon ` +
            `${horizon.toISOString()}: it can no longer be told apart from an event already counted`,
        );
        continue;
      }
      try {
        deliveries.push({ msg, priced: priceEvent(options.catalogue, options.currency, parsed.data) });
      } catch (error) {
        await options.deadLetters.add(msg, error instanceof Error ? error.message : String(error));
      }
    }
    await write(deliveries);
  }

  /** Writes the deliveries, splitting them on a failure that is some message's fault. */
  async function write(deliveries: Delivery[]): Promise<void> {
    if (deliveries.length === 0) return;
    try {
      const result = await recordUsage(
        db,
        deliveries.map((delivery) => delivery.priced),
      );
      for (const { msg } of deliveries) msg.ack();
      if (result.recorded > 0) options.onCommitted(result);
      logger.debug({ received: deliveries.length, recorded: result.recorded }, "usage batch written");
    } catch (error) {
      if (isTransient(error)) {
        logger.warn({ err: error, count: deliveries.length }, "usage batch not written; will be retried");
        for (const { msg } of deliveries) msg.nak(options.retryDelayMs);
        return;
      }
      if (deliveries.length > 1) {
        const middle = Math.ceil(deliveries.length / 2);
        await write(deliveries.slice(0, middle));
        await write(deliveries.slice(middle));
        return;
      }
      const [{ msg }] = deliveries as [Delivery];
      if (msg.info.deliveryCount >= options.maxDeliveries) {
        await options.deadLetters.add(
          msg,
          `writing it failed ${msg.info.deliveryCount} times: ${String(error)}`,
        );
      } else {
        logger.warn(
          { err: error, streamSequence: msg.seq, deliveries: msg.info.deliveryCount },
          "usage event not written; will be retried",
        );
        msg.nak(options.retryDelayMs);
      }
    }
  }

  return {
    async stop() {
      running = false;
      wake?.();
      await loop;
      await messages.close();
      // Anything delivered but not yet written goes back now rather than after the ack wait.
      for (const msg of queue.splice(0)) msg.nak();
    },
  };
}

function safeJson(msg: JsMsg): unknown {
  try {
    return msg.json();
  } catch {
    return undefined;
  }
}
