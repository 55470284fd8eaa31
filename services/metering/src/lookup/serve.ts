import type { Kysely } from "kysely";
import type { Bus, Subscription } from "@llmaas/bus";
import { usageLookup } from "@llmaas/contracts";
import type { MeteringDatabase } from "@llmaas/db";

/**
 * Answers gateways settling quota reservations whose requests ended without usage in band: what was recorded for
 * those request ids, read by primary key. Gateways hold the ids they admitted, so no organization scope is needed.
 */
export function serveUsageLookup(bus: Bus, db: Kysely<MeteringDatabase>): Subscription {
  return bus.serve(
    usageLookup,
    usageLookup.subject,
    async ({ requestIds }) => {
      const rows = await db
        .selectFrom("usage_events")
        .select(["request_id", "prompt_tokens", "completion_tokens", "audio_seconds"])
        .where("request_id", "in", requestIds)
        .execute();
      return {
        recorded: rows.map((row) => ({
          requestId: row.request_id,
          promptTokens: row.prompt_tokens,
          completionTokens: row.completion_tokens,
          audioSeconds: row.audio_seconds,
        })),
      };
    },
    { queue: "metering" },
  );
}
