import { sql, type Kysely } from "kysely";
import type { MeteringDatabase } from "@llmaas/db";
import type { UsageEvent } from "@llmaas/contracts";

/**
 * Writes a batch of usage events and folds the new ones into the hourly aggregates, in one statement and so in one
 * transaction. An event already recorded (a redelivery, or a publish retried outside the stream's duplicate window)
 * is skipped by the primary key and never reaches the aggregates: nothing is counted twice.
 */
export async function recordUsage(db: Kysely<MeteringDatabase>, events: UsageEvent[]): Promise<number> {
  if (events.length === 0) return 0;
  const unique = [...new Map(events.map((event) => [event.requestId, event])).values()];
  const result = await db
    .with("inserted", (qb) =>
      qb
        .insertInto("usage_events")
        .values(
          unique.map((event) => ({
            request_id: event.requestId,
            organization_id: event.organizationId,
            project_id: event.projectId,
            key_id: event.keyId,
            end_user: event.endUser,
            model: event.model,
            operation: event.operation,
            prompt_tokens: event.promptTokens,
            completion_tokens: event.completionTokens,
            status: event.status,
            served_by: event.servedBy,
            started_at: event.startedAt,
            finished_at: event.finishedAt,
          })),
        )
        .onConflict((oc) => oc.column("request_id").doNothing())
        .returning([
          "finished_at",
          "organization_id",
          "project_id",
          "key_id",
          "model",
          "prompt_tokens",
          "completion_tokens",
        ]),
    )
    .insertInto("usage_hourly")
    .columns([
      "hour",
      "organization_id",
      "project_id",
      "key_id",
      "model",
      "requests",
      "prompt_tokens",
      "completion_tokens",
    ])
    .expression((eb) =>
      eb
        .selectFrom("inserted")
        .select([
          sql<Date>`date_trunc('hour', inserted.finished_at, 'UTC')`.as("hour"),
          "inserted.organization_id",
          "inserted.project_id",
          "inserted.key_id",
          "inserted.model",
          sql<string>`count(*)`.as("requests"),
          sql<string>`sum(inserted.prompt_tokens)`.as("prompt_tokens"),
          sql<string>`sum(inserted.completion_tokens)`.as("completion_tokens"),
        ])
        .groupBy([
          sql`1`,
          "inserted.organization_id",
          "inserted.project_id",
          "inserted.key_id",
          "inserted.model",
        ]),
    )
    .onConflict((oc) =>
      oc.columns(["hour", "organization_id", "project_id", "key_id", "model"]).doUpdateSet({
        requests: sql`usage_hourly.requests + excluded.requests`,
        prompt_tokens: sql`usage_hourly.prompt_tokens + excluded.prompt_tokens`,
        completion_tokens: sql`usage_hourly.completion_tokens + excluded.completion_tokens`,
      }),
    )
    .executeTakeFirst();
  return Number(result.numInsertedOrUpdatedRows ?? 0n);
}
