import type { Kysely } from "kysely";
import type { Consumer, JsMsg } from "@nats-io/jetstream";
import { ensureDurableConsumer, ensureStream, type Bus } from "@llmaas/bus";
import { usageStream, type UsageEvent } from "@llmaas/contracts";
import type { MeteringDatabase } from "@llmaas/db";
import type { Logger } from "@llmaas/telemetry";
import { recordUsage } from "./store.js";
import { StoredUsageEvent } from "./usage-versions.js";

export const METERING_CONSUMER = "metering";

export interface MeteringOptions {
  bus: Bus;
  db: Kysely<MeteringDatabase>;
  logger: Logger;
  batchSize: number;
  /** How long one fetch waits for the batch to fill before writing what it has. */
  fetchWaitMs?: number;
  /** After a failed write, when the batch is offered again. */
  retryDelayMs?: number;
}

export interface Metering {
  /** Finishes the batch in hand (written and acknowledged, or left for redelivery) and stops fetching. */
  stop(): Promise<void>;
}

/**
 * Consumes usage events from JetStream through one durable consumer shared by every metering instance, writes each
 * batch in one transaction and acknowledges only after the commit. A crash before the ack means redelivery, which
 * the store's idempotent write absorbs.
 */
export async function startMetering(options: MeteringOptions): Promise<Metering> {
  const { bus, db, logger, batchSize } = options;
  const fetchWaitMs = options.fetchWaitMs ?? 1000;
  const retryDelayMs = options.retryDelayMs ?? 2000;
  const streamName = await ensureStream(bus, usageStream);
  const consumer: Consumer = await ensureDurableConsumer(bus, streamName, {
    durableName: METERING_CONSUMER,
    ackWaitMs: 30_000,
    maxAckPending: batchSize * 4,
  });

  let running = true;
  const loop = (async () => {
    while (running) {
      try {
        const batch = await consumer.fetch({ max_messages: batchSize, expires: fetchWaitMs });
        const messages: JsMsg[] = [];
        for await (const msg of batch) messages.push(msg);
        await writeBatch(messages);
      } catch (error) {
        if (!running) break;
        logger.error({ err: error }, "metering fetch failed; retrying");
        await sleep(retryDelayMs);
      }
    }
  })();

  async function writeBatch(messages: JsMsg[]): Promise<void> {
    if (messages.length === 0) return;
    const events: UsageEvent[] = [];
    const valid: JsMsg[] = [];
    for (const msg of messages) {
      const parsed = StoredUsageEvent.safeParse(safeJson(msg));
      if (parsed.success) {
        events.push(parsed.data);
        valid.push(msg);
      } else {
        // Redelivering a message that can never parse would block nothing but would loop forever; it is dropped
        // and logged by sequence so it can be found in the stream.
        logger.error({ streamSequence: msg.seq }, "usage event does not match its schema; terminated");
        msg.term();
      }
    }
    try {
      const recorded = await recordUsage(db, events);
      await Promise.all(valid.map((msg) => msg.ackAck()));
      logger.debug({ received: events.length, recorded }, "usage batch written");
    } catch (error) {
      logger.error({ err: error, count: valid.length }, "usage batch not written; will be redelivered");
      for (const msg of valid) msg.nak(retryDelayMs);
    }
  }

  return {
    async stop() {
      running = false;
      await loop;
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

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
