import type { Kysely } from "kysely";
import { credentialsRevoked, type CredentialsRevoked, type GuardrailPolicy } from "@llmaas/contracts";
import type { Bus } from "@llmaas/bus";
import type { AuthDatabase } from "@llmaas/db";
import type { LimitSettings } from "./admin/limits/settings.js";
import type { SecretHasher } from "./secrets.js";

/** What every auth handler works with. */
export interface AuthContext {
  db: Kysely<AuthDatabase>;
  hasher: SecretHasher;
  limits: LimitSettings;
  /** The guardrail policy of a project that set none. */
  guardrailDefault: GuardrailPolicy;
  /**
   * Tells every gateway to drop what it cached under these scopes. Called after the change commits, and resolves
   * once the NATS server has the messages: when an admin route answers, every connected gateway is being told.
   */
  revoke(revocations: CredentialsRevoked[]): Promise<void>;
}

export function createAuthContext(
  bus: Bus,
  db: Kysely<AuthDatabase>,
  hasher: SecretHasher,
  limits: LimitSettings,
  guardrailDefault: GuardrailPolicy,
): AuthContext {
  return {
    db,
    hasher,
    limits,
    guardrailDefault,
    revoke: async (revocations) => {
      for (const revocation of revocations) {
        bus.publish(credentialsRevoked, credentialsRevoked.subject, revocation);
      }
      await bus.flush();
    },
  };
}
