import { sql } from "kysely";
import { OidcSettings, PlatformError, type AdminPrincipal, type ClientInfo } from "@llmaas/contracts";
import { administratorActor, anonymousSessionActor } from "../audit/actors.js";
import { recordAudit } from "../audit/record.js";
import type { AuthContext } from "../context.js";
import { ID_PREFIX, newId } from "../ids.js";
import { peekIssuer, type OidcFailureCode, type OidcVerifier } from "../oidc/verifier.js";
import { invalidApiKey } from "./api-keys.js";

interface OidcOrganization {
  id: string;
  settings: OidcSettings;
}

/**
 * The organization whose settings judge this token. The caller may name it (`OpenAI-Organization`, as OpenAI's SDKs
 * send it); otherwise the token's issuer and audience pick it. Several organizations may share an identity provider
 * (then the audience tells them apart, or the header must). When a single organization signs in with the token's
 * issuer, its settings judge the token even if the audience is wrong, so that the refusal lands in its audit log; a
 * token whose issuer no organization uses is refused without being attributed to anyone.
 */
async function organizationFor(
  ctx: AuthContext,
  token: string,
  hint: string | null,
): Promise<OidcOrganization> {
  const claims = peekIssuer(token);
  if (!claims) throw invalidApiKey("The identity token is not a JWT with an issuer.");
  const withOidc = ctx.db
    .selectFrom("organizations")
    .select(["id", "oidc"])
    .where("oidc", "is not", null)
    .where("status", "!=", "deleted");
  const toOrganization = (row: { id: string; oidc: unknown }) => ({
    id: row.id,
    settings: OidcSettings.parse(row.oidc),
  });
  if (hint !== null) {
    const named = await withOidc.where("id", "=", hint).executeTakeFirst();
    if (!named) throw invalidApiKey("The organization named in OpenAI-Organization has no OIDC sign-in.");
    return toOrganization(named);
  }
  const onIssuer = (await withOidc.where("oidc_issuer", "=", claims.issuer).execute()).map(toOrganization);
  const byAudience = onIssuer.filter((org) => claims.audiences.includes(org.settings.audience));
  if (byAudience.length > 1) {
    throw invalidApiKey(
      "Several organizations accept this identity token's issuer and audience; name yours in the " +
        "OpenAI-Organization header.",
    );
  }
  const chosen = byAudience[0] ?? (onIssuer.length === 1 ? onIssuer[0] : undefined);
  if (!chosen) {
    throw invalidApiKey(
      "No organization signs in administrators with this identity token's issuer and audience.",
    );
  }
  return chosen;
}

/** A refusal the administrator can act on; the detail of a failed signature stays in the audit log. */
function signInRefusal(code: OidcFailureCode, message: string): PlatformError {
  if (code === "no_role") {
    return new PlatformError(
      "permission_denied",
      `Signed in, but with no role in this organization: ${message}`,
    );
  }
  return invalidApiKey(`The identity token was refused: ${message}`);
}

/**
 * An administrator's request, authenticated by an ID token from the organization's OIDC provider. The first use of
 * each token is the sign-in: it is audited (`login.succeeded`) once, whatever the number of auth instances, because
 * the token's hash is inserted with the event in one transaction. Every refused token is audited as `login.failed`.
 * The role comes from the token each time, so a change in the identity provider applies with the next token.
 */
export async function signIn(
  ctx: AuthContext,
  verifier: OidcVerifier,
  token: string,
  hint: string | null,
  client: ClientInfo,
): Promise<AdminPrincipal> {
  const organization = await organizationFor(ctx, token, hint);
  const result = await verifier.verify(token, organization.settings);
  if (!result.ok) {
    await recordAudit(ctx.db, {
      organizationId: organization.id,
      type: "login.failed",
      actor: anonymousSessionActor(client),
      resourceId: null,
      details: { error_code: result.code, error_message: result.message },
    });
    throw signInRefusal(result.code, result.message);
  }
  const verified = result.administrator;
  const tokenHash = ctx.hasher.hash(token);
  const user = await ctx.db.transaction().execute(async (trx) => {
    const session = await trx
      .selectFrom("admin_sessions as session")
      .innerJoin("administrators as administrator", "administrator.id", "session.administrator_id")
      .select(["administrator.id", "administrator.email"])
      .where("session.token_hash", "=", tokenHash)
      .executeTakeFirst();
    if (session) return session;
    const administrator = await trx
      .insertInto("administrators")
      .values({
        id: newId(ID_PREFIX.administrator),
        organization_id: organization.id,
        issuer: organization.settings.issuer,
        subject: verified.subject,
        email: verified.email,
        name: verified.name,
        role: verified.role,
      })
      .onConflict((oc) =>
        oc.columns(["organization_id", "issuer", "subject"]).doUpdateSet({
          email: verified.email,
          name: verified.name,
          role: verified.role,
          last_login_at: sql`now()`,
        }),
      )
      .returning(["id", "email"])
      .executeTakeFirstOrThrow();
    const inserted = await trx
      .insertInto("admin_sessions")
      .values({
        token_hash: tokenHash,
        organization_id: organization.id,
        administrator_id: administrator.id,
        expires_at: verified.expiresAt,
      })
      .onConflict((oc) => oc.column("token_hash").doNothing())
      .returning("token_hash")
      .executeTakeFirst();
    // Another instance recorded this sign-in between our look-up and our insert.
    if (inserted) {
      await recordAudit(trx, {
        organizationId: organization.id,
        type: "login.succeeded",
        actor: administratorActor(administrator, client),
        resourceId: administrator.id,
        details: null,
      });
    }
    return administrator;
  });
  return {
    kind: "administrator",
    organizationId: organization.id,
    role: verified.role,
    id: user.id,
    actor: administratorActor(user, client),
  };
}

/** Sessions only dedupe sign-ins; once their token has expired they serve nothing. */
export async function deleteExpiredSessions(ctx: AuthContext, now = new Date()): Promise<void> {
  await ctx.db.deleteFrom("admin_sessions").where("expires_at", "<", now).execute();
}
