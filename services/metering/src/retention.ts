import { sql, type Kysely } from "kysely";
import type { MeteringDatabase } from "@llmaas/db";
import type { Logger } from "@llmaas/telemetry";

/** Rows deleted per statement: short transactions, so ingest is never held up for long. */
const DELETE_CHUNK = 10_000;
/** Any fixed number: instances that take it exclusively run the job one at a time. */
const RETENTION_LOCK = 7_300_001;

export interface RetentionOptions {
  db: Kysely<MeteringDatabase>;
  logger: Logger;
  retentionDays: number;
  intervalMs: number;
}

export interface RetentionJob {
  /** One pass now: the raw events that ended before the horizon are deleted. Resolves with how many. */
  runOnce(now?: Date): Promise<number>;
  stop(): Promise<void>;
}

/** The start of the raw-event retention period: events that ended earlier are deleted, and refused if they come. */
export function retentionHorizon(retentionDays: number, now: Date = new Date()): Date {
  return new Date(now.getTime() - retentionDays * 24 * 60 * 60 * 1000);
}

/**
 * Deletes raw usage events older than the retention period. Their usage is already in the aggregates (they were
 * folded in when recorded), which stay. Safe on several instances at once: a session-level advisory lock lets one
 * pass run at a time, and the others skip; deleting is idempotent anyway.
 */
export function startRetention(options: RetentionOptions): RetentionJob {
  const { db, logger } = options;

  async function runOnce(now: Date = new Date()): Promise<number> {
    const horizon = retentionHorizon(options.retentionDays, now);
    return db.connection().execute(async (connection) => {
      const { rows } = await sql<{
        locked: boolean;
      }>`select pg_try_advisory_lock(${RETENTION_LOCK}) as locked`.execute(connection);
      if (!rows[0]?.locked) return 0;
      try {
        let deleted = 0;
        for (;;) {
          const result = await sql`
            delete from usage_events where ctid = any(array(
              select ctid from usage_events where finished_at < ${horizon} limit ${DELETE_CHUNK}))`.execute(
            connection,
          );
          const count = Number(result.numAffectedRows ?? 0n);
          deleted += count;
          if (count < DELETE_CHUNK) break;
        }
        if (deleted > 0)
          logger.info({ deleted, horizon: horizon.toISOString() }, "raw usage events past retention deleted");
        return deleted;
      } finally {
        await sql`select pg_advisory_unlock(${RETENTION_LOCK})`.execute(connection);
      }
    });
  }

  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  let running: Promise<unknown> = Promise.resolve();
  const schedule = (): void => {
    if (stopped) return;
    timer = setTimeout(() => {
      running = runOnce()
        .catch((error: unknown) => logger.warn({ err: error }, "usage retention pass failed; will retry"))
        .finally(schedule);
    }, options.intervalMs);
    timer.unref();
  };
  schedule();

  return {
    runOnce,
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}
