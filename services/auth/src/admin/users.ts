import type { Bus } from "@llmaas/bus";
import { adminSubjects } from "@llmaas/contracts";
import type { AuthContext } from "../context.js";
import { toOrganization } from "../operator/organizations.js";
import { notFound, serveAdmin } from "./serve.js";
import { toList, toUser } from "./views.js";

/**
 * The organization's administrators, as OpenAI's users: people who signed in through its OIDC provider at least
 * once. Their role is the one of their latest sign-in; the identity provider, not this API, changes it.
 */
export function serveUsers(bus: Bus, ctx: AuthContext): void {
  const { db } = ctx;

  serveAdmin(bus, ctx, adminSubjects.usersList, async ({ principal, limit, after, emails }) => {
    let query = db
      .selectFrom("administrators")
      .selectAll()
      .where("organization_id", "=", principal.organizationId);
    if (emails !== null) query = query.where("email", "in", emails.length ? emails : [""]);
    if (after !== null) query = query.where("id", ">", after);
    const rows = await query
      .orderBy("id")
      .limit(limit + 1)
      .execute();
    return toList(rows, limit, toUser);
  });

  serveAdmin(bus, ctx, adminSubjects.usersRetrieve, async ({ principal, userId }) => {
    const row = await db
      .selectFrom("administrators")
      .selectAll()
      .where("organization_id", "=", principal.organizationId)
      .where("id", "=", userId)
      .executeTakeFirst();
    if (!row) throw notFound("user", userId);
    return toUser(row);
  });

  serveAdmin(bus, ctx, adminSubjects.organizationRetrieve, async ({ principal }) => {
    const row = await db
      .selectFrom("organizations")
      .selectAll()
      .where("id", "=", principal.organizationId)
      .executeTakeFirstOrThrow();
    return toOrganization(row);
  });
}
