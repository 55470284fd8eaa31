import type { Kysely } from "kysely";
import type { Bus, Subscription } from "@llmaas/bus";
import type { Catalogue } from "@llmaas/catalogue";
import { meteringStream } from "@llmaas/contracts";
import { ensureStream } from "@llmaas/bus";
import type { MeteringDatabase } from "@llmaas/db";
import type { Logger } from "@llmaas/telemetry";
import { serveUsageExport } from "./export/serve.js";
import { startIngest } from "./ingest/consumer.js";
import { serveUsageLookup } from "./lookup/serve.js";
import { DeadLetters } from "./ingest/dead-letters.js";
import { startOutboxPublisher } from "./outbox.js";
import { retentionHorizon, startRetention } from "./retention.js";
import { serveUsageApi } from "./usage-api/serve.js";

export interface MeteringOptions {
  bus: Bus;
  db: Kysely<MeteringDatabase>;
  logger: Logger;
  catalogue: Catalogue;
  /** ISO 4217, upper case: the currency of the catalogue's prices. */
  currency: string;
  batchSize: number;
  /** Batches written at once by this instance. */
  writers?: number;
  lingerMs?: number;
  ackWaitMs?: number;
  maxDeliveries?: number;
  retentionDays?: number;
  retentionIntervalMs?: number;
  /** After a write failed because the database was unreachable, when the batch is tried again. */
  retryDelayMs?: number;
  /** How often the outbox is swept for changes left unpublished. */
  outboxSweepMs?: number;
}

export interface Metering {
  deadLetters: DeadLetters;
  /** Finishes the batch in hand (written and acknowledged, or left for redelivery) and stops. */
  stop(): Promise<void>;
}

/**
 * Everything metering does: ingest usage into raw events and aggregates, publish each commit's changes for billing,
 * delete raw events past retention, and answer the Usage and Costs API and the export over the bus.
 */
export async function startMetering(options: MeteringOptions): Promise<Metering> {
  const { bus, db, logger } = options;
  const retryDelayMs = options.retryDelayMs ?? 1000;
  const retentionDays = options.retentionDays ?? 400;
  await ensureStream(bus, meteringStream);
  const deadLetters = new DeadLetters(bus, logger, retryDelayMs);
  const outbox = startOutboxPublisher({ bus, db, logger, sweepIntervalMs: options.outboxSweepMs ?? 5000 });
  const ingest = await startIngest({
    bus,
    db,
    logger,
    catalogue: options.catalogue,
    currency: options.currency,
    deadLetters,
    batchSize: options.batchSize,
    writers: options.writers ?? 2,
    lingerMs: options.lingerMs ?? 50,
    ackWaitMs: options.ackWaitMs ?? 30_000,
    maxDeliveries: options.maxDeliveries ?? 5,
    acceptsFinishedAfter: () => retentionHorizon(retentionDays),
    retryDelayMs,
    onCommitted: () => outbox.notify(),
  });
  const retention = startRetention({
    db,
    logger,
    retentionDays,
    intervalMs: options.retentionIntervalMs ?? 60 * 60 * 1000,
  });
  const subscriptions: Subscription[] = [
    ...serveUsageApi(bus, db),
    ...serveUsageExport(bus, db),
    serveUsageLookup(bus, db),
  ];
  return {
    deadLetters,
    async stop() {
      for (const subscription of subscriptions) subscription.unsubscribe();
      await ingest.stop();
      await outbox.stop();
      await retention.stop();
    },
  };
}
