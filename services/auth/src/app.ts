import type { Kysely } from "kysely";
import type { Bus } from "@llmaas/bus";
import { authAuthenticate, type GuardrailPolicy } from "@llmaas/contracts";
import type { AuthDatabase } from "@llmaas/db";
import type { Logger } from "@llmaas/telemetry";
import { serveAdminKeys } from "./admin/admin-keys.js";
import { serveApiKeys } from "./admin/api-keys.js";
import { serveAuditLogs } from "./admin/audit-logs.js";
import { serveGuardrailPolicies } from "./admin/guardrail.js";
import { serveLimits } from "./admin/limits/index.js";
import type { LimitSettings } from "./admin/limits/settings.js";
import { serveProjects } from "./admin/projects.js";
import { serveInQueue } from "./admin/serve.js";
import { serveServiceAccounts } from "./admin/service-accounts.js";
import { serveUsers } from "./admin/users.js";
import { deleteExpiredSessions } from "./authenticate/administrators.js";
import { createAuthenticator } from "./authenticate/index.js";
import { createAuthContext } from "./context.js";
import { serveKeysUsed } from "./key-usage.js";
import { OidcVerifier, type OidcVerifierOptions } from "./oidc/verifier.js";
import { serveOrganizations } from "./operator/organizations.js";
import { serveQuotaLedger } from "./quotas/serve.js";
import { OperatorToken, SecretHasher } from "./secrets.js";

export interface AuthOptions {
  bus: Bus;
  db: Kysely<AuthDatabase>;
  logger: Logger;
  /** The server key of every stored secret's HMAC. */
  keySecret: string;
  operatorToken: { token?: string | undefined; sha256?: string | undefined };
  oidc: OidcVerifierOptions;
  /** The catalogue and the default rate limits, which every API key's principal carries for its project. */
  limits: LimitSettings;
  /** The guardrail policy of a project that set none; every API key's principal carries its own project's. */
  guardrailDefault: GuardrailPolicy;
}

export interface AuthService {
  stop(): void;
}

const SESSION_CLEANUP_INTERVAL_MS = 60 * 60 * 1000;

/**
 * Identity, keys and the audit log: authenticates every credential the gateways receive, and serves the
 * Administration API and the operator's routes. Any number of instances share the work through one queue group.
 */
export function startAuth(options: AuthOptions): AuthService {
  const { bus, db, logger } = options;
  const ctx = createAuthContext(
    bus,
    db,
    new SecretHasher(options.keySecret),
    options.limits,
    options.guardrailDefault,
  );
  const authenticator = createAuthenticator(
    ctx,
    new OperatorToken(options.operatorToken),
    new OidcVerifier(options.oidc),
  );

  serveInQueue(bus, authAuthenticate, (request) => authenticator.authenticate(request));
  serveKeysUsed(bus, ctx, logger);
  serveProjects(bus, ctx);
  serveServiceAccounts(bus, ctx);
  serveApiKeys(bus, ctx);
  serveAdminKeys(bus, ctx);
  serveAuditLogs(bus, ctx);
  serveUsers(bus, ctx);
  serveLimits(bus, ctx);
  serveGuardrailPolicies(bus, ctx);
  serveOrganizations(bus, ctx);
  const quotaLedger = serveQuotaLedger(bus, db, logger);

  const cleanup = setInterval(() => {
    deleteExpiredSessions(ctx).catch((err: unknown) => logger.warn({ err }, "expired sessions not deleted"));
  }, SESSION_CLEANUP_INTERVAL_MS);
  cleanup.unref();
  return {
    stop: () => {
      clearInterval(cleanup);
      quotaLedger.stop();
    },
  };
}
