import { sql } from "kysely";
import type { Bus } from "@llmaas/bus";
import { keysUsed, type KeysUsed } from "@llmaas/contracts";
import type { Logger } from "@llmaas/telemetry";
import { AUTH_QUEUE } from "./admin/serve.js";
import type { AuthContext } from "./context.js";

/** One statement per report, and `last_used_at` only ever moves forward whatever order reports arrive in. */
async function recordKeysUsed(ctx: AuthContext, report: KeysUsed): Promise<void> {
  const rows = report.keys.map((key) => sql`(${key.keyId}, ${new Date(key.lastUsedAt)}::timestamptz)`);
  await sql`
    update api_keys set last_used_at = greatest(api_keys.last_used_at, used.at)
    from (values ${sql.join(rows)}) as used(id, at)
    where api_keys.id = used.id`.execute(ctx.db);
}

export function serveKeysUsed(bus: Bus, ctx: AuthContext, logger: Logger): void {
  bus.subscribe(
    keysUsed,
    keysUsed.subject,
    (report) => {
      recordKeysUsed(ctx, report).catch((err: unknown) =>
        logger.warn({ err, keys: report.keys.length }, "could not record when keys were last used"),
      );
    },
    { queue: AUTH_QUEUE },
  );
}
