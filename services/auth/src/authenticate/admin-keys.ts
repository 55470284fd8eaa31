import { sql } from "kysely";
import { openaiAdmin, type AdminPrincipal, type ClientInfo } from "@llmaas/contracts";
import { adminKeyActor } from "../audit/actors.js";
import type { AuthContext } from "../context.js";
import { invalidApiKey } from "./api-keys.js";

/** `last_used_at` moves at most once a minute per key: coarse enough that using a key is not a write. */
const LAST_USED_RESOLUTION_SECONDS = 60;

/**
 * An admin key acts as an owner of its organization. A suspended organization's keys still authenticate, so its
 * administrators can read and export what they configured; changes are refused where they are made.
 */
export async function verifyAdminKey(
  ctx: AuthContext,
  credential: string,
  client: ClientInfo,
  now = new Date(),
): Promise<AdminPrincipal> {
  const row = await ctx.db
    .selectFrom("admin_api_keys as key")
    .innerJoin("organizations as organization", "organization.id", "key.organization_id")
    .select(["key.id", "key.organization_id", "key.owner", "key.expires_at", "organization.status"])
    .where("key.secret_hash", "=", ctx.hasher.hash(credential))
    .where("key.deleted_at", "is", null)
    .executeTakeFirst();
  if (!row || row.status === "deleted") throw invalidApiKey();
  if (row.expires_at !== null && row.expires_at <= now)
    throw invalidApiKey("This admin API key has expired.");
  await ctx.db
    .updateTable("admin_api_keys")
    .set({ last_used_at: now })
    .where("id", "=", row.id)
    .where((eb) =>
      eb.or([
        eb("last_used_at", "is", null),
        eb(
          "last_used_at",
          "<",
          sql<Date>`${now}::timestamptz - make_interval(secs => ${LAST_USED_RESOLUTION_SECONDS})`,
        ),
      ]),
    )
    .execute();
  const owner = openaiAdmin.AdminApiKeyOwner.parse(row.owner);
  return {
    kind: "admin_key",
    organizationId: row.organization_id,
    role: "owner",
    id: row.id,
    actor: adminKeyActor(row.id, owner, client),
  };
}
