import { sql, type Kysely } from "kysely";
import type { Bus } from "@llmaas/bus";
import { UsageChange, usageCommitted } from "@llmaas/contracts";
import type { MeteringDatabase } from "@llmaas/db";
import type { Logger } from "@llmaas/telemetry";

/** Changes per message: a change is under 500 bytes, so a part stays far below NATS's 1 MB payload limit. */
const CHANGES_PER_PART = 500;
/** Outbox rows published per transaction. */
const ROWS_PER_ROUND = 20;

export interface OutboxPublisherOptions {
  bus: Bus;
  db: Kysely<MeteringDatabase>;
  logger: Logger;
  /** How often the outbox is swept even without a local commit: rows another instance left behind, or failed. */
  sweepIntervalMs: number;
}

export interface OutboxPublisher {
  /** Asks for a publish round soon (after a local commit). */
  notify(): void;
  stop(): Promise<void>;
}

/**
 * Publishes what each committed batch changed to `metering.v1.usage.committed` (JetStream). The changes were written
 * to `metering_outbox` in the batch's own transaction; a row is deleted only once every part of it is acknowledged by
 * JetStream. Rows are claimed with `FOR UPDATE SKIP LOCKED`, so several instances publish different rows; a crash
 * leaves the row to be published again, under the same message ids, which JetStream stores once.
 */
export function startOutboxPublisher(options: OutboxPublisherOptions): OutboxPublisher {
  const { bus, db, logger } = options;
  let running = true;
  let pending = true;
  let wake: (() => void) | undefined;

  const loop = (async () => {
    while (running) {
      if (!pending) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, options.sweepIntervalMs);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        wake = undefined;
      }
      pending = false;
      try {
        while (running && (await publishRound()) === ROWS_PER_ROUND);
      } catch (error) {
        logger.warn({ err: error }, "usage changes not published yet; will retry");
      }
    }
  })();

  async function publishRound(): Promise<number> {
    return db.transaction().execute(async (trx) => {
      const rows = await trx
        .selectFrom("metering_outbox")
        .select(["id", "created_at", "changes"])
        .orderBy("id")
        .limit(ROWS_PER_ROUND)
        .forUpdate()
        .skipLocked()
        .execute();
      for (const row of rows) {
        const changes = UsageChange.array().parse(row.changes);
        const parts = Math.max(1, Math.ceil(changes.length / CHANGES_PER_PART));
        for (let part = 0; part < parts; part++) {
          await bus.publishDurable(
            usageCommitted,
            {
              batchId: row.id,
              part,
              parts,
              committedAt: new Date(row.created_at).toISOString(),
              changes: changes.slice(part * CHANGES_PER_PART, (part + 1) * CHANGES_PER_PART),
            },
            `${row.id}.${part}`,
          );
        }
      }
      if (rows.length > 0) {
        await trx
          .deleteFrom("metering_outbox")
          .where(
            "id",
            "in",
            rows.map((row) => row.id),
          )
          .execute();
      }
      return rows.length;
    });
  }

  return {
    notify() {
      pending = true;
      wake?.();
    },
    async stop() {
      running = false;
      wake?.();
      await loop;
    },
  };
}

/** Rows waiting to be published: for tests and the health of the pipeline. */
export async function outboxBacklog(db: Kysely<MeteringDatabase>): Promise<number> {
  const { count } = await db
    .selectFrom("metering_outbox")
    .select(sql<string>`count(*)`.as("count"))
    .executeTakeFirstOrThrow();
  return Number(count);
}
