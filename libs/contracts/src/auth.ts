import { z } from "zod";
import { eventSubject, requestSubject } from "./definitions.js";
import { PlatformError } from "./errors.js";
import { GuardrailPolicy } from "./guardrail-policy.js";
import { RequestLimits } from "./limits.js";

/**
 * Who is calling, as `auth` established it. An API key authenticates inference; an admin API key or an
 * administrator's OIDC token authenticates its organization's administration; the operator token authenticates the
 * operator's routes. The gateway decides which kinds a route accepts; `auth` decides who a credential is.
 */

/** Where a request came from, as the gateway saw it; recorded in the audit log with the actor. */
export const ClientInfo = z.object({
  ip: z.string().max(64),
  userAgent: z.string().max(512).nullable(),
});
export type ClientInfo = z.infer<typeof ClientInfo>;

/** The identity an inference request is attributed to, carried to the workers and into usage events. */
export const AuthPrincipal = z.object({
  organizationId: z.string(),
  projectId: z.string(),
  keyId: z.string(),
});
export type AuthPrincipal = z.infer<typeof AuthPrincipal>;

export const ApiKeyPrincipal = AuthPrincipal.extend({
  kind: z.literal("api_key"),
  serviceAccountId: z.string(),
  /** Model ids or aliases this key may use; null allows every model. */
  allowedModels: z.array(z.string()).nullable(),
  /**
   * Unix milliseconds after which this secret must be refused without asking `auth` again: the end of a rotation's
   * grace period or the key's expiry, whichever comes first. null when neither applies.
   */
  validUntil: z.number().int().nullable(),
  /** Everything that bounds the key's requests, so that a gateway admits them without asking `auth` each time. */
  limits: RequestLimits,
  /** How the key's prompts are screened (docs/guardrail.md). */
  guardrail: GuardrailPolicy,
});
export type ApiKeyPrincipal = z.infer<typeof ApiKeyPrincipal>;

/**
 * The actor of an audit event, in OpenAI's `AuditLogActor` shape. `ip_address` and `user_agent` on an `api_key`
 * actor are extensions: OpenAI records them for sessions only, and the platform records them for every change.
 */
const AuditUser = z.object({ id: z.string(), email: z.string().optional() });
export const AuditActor = z.discriminatedUnion("type", [
  z.object({
    type: z.literal("session"),
    session: z.object({
      user: AuditUser.optional(),
      ip_address: z.string(),
      user_agent: z.string().optional(),
    }),
  }),
  z.object({
    type: z.literal("api_key"),
    api_key: z.object({
      id: z.string(),
      type: z.enum(["user", "service_account"]),
      user: AuditUser.optional(),
      service_account: z.object({ id: z.string() }).optional(),
      ip_address: z.string(),
      user_agent: z.string().optional(),
    }),
  }),
]);
export type AuditActor = z.infer<typeof AuditActor>;

export const AdministratorRole = z.enum(["owner", "reader"]);
export type AdministratorRole = z.infer<typeof AdministratorRole>;

/**
 * A reader asked to change something. The gateway refuses it by HTTP method before anything is parsed; `auth`, which
 * owns the data, refuses it again for every subject that writes, whoever sends it.
 */
export function readerMayNotChange(): PlatformError {
  return new PlatformError(
    "permission_denied",
    "Your role in this organization is `reader`: you can read its administration, not change it.",
  );
}

/** An admin API key or a signed-in administrator, acting on one organization. */
export const AdminPrincipal = z.object({
  kind: z.enum(["admin_key", "administrator"]),
  organizationId: z.string(),
  /** Admin API keys act as owners; an administrator's role comes from the organization's OIDC claim mapping. */
  role: AdministratorRole,
  /** The admin key's id, or the administrator's user id. */
  id: z.string(),
  actor: AuditActor,
});
export type AdminPrincipal = z.infer<typeof AdminPrincipal>;

export const OperatorPrincipal = z.object({ kind: z.literal("operator"), actor: AuditActor });
export type OperatorPrincipal = z.infer<typeof OperatorPrincipal>;

export const Principal = z.union([ApiKeyPrincipal, AdminPrincipal, OperatorPrincipal]);
export type Principal = z.infer<typeof Principal>;

/** Node's whole request head is at most 16 KiB, so no longer credential reaches the gateway. */
const MAX_CREDENTIAL_LENGTH = 16_384;

export const AuthenticateRequest = z.object({
  /** The Bearer credential, exactly as sent. It crosses the bus to `auth` only and is never logged. */
  credential: z.string().min(1).max(MAX_CREDENTIAL_LENGTH),
  /** The `OpenAI-Organization` header: picks the organization when an OIDC issuer serves several. */
  organizationHint: z.string().max(128).nullable(),
  client: ClientInfo,
});
export type AuthenticateRequest = z.infer<typeof AuthenticateRequest>;

/** Served by every `auth` instance in one queue group. */
export const authAuthenticate = requestSubject("auth.v1.authenticate", AuthenticateRequest, Principal);

/**
 * Broadcast by `auth` after it commits a change that takes credentials away: a key deleted or rotated, a project
 * archived, an organization suspended or deleted. Every gateway drops what it cached under that scope.
 */
export const CredentialsRevoked = z.object({
  scope: z.enum(["key", "project", "organization"]),
  id: z.string().min(1),
});
export type CredentialsRevoked = z.infer<typeof CredentialsRevoked>;

export const credentialsRevoked = eventSubject("auth.v1.revoked", CredentialsRevoked);

/**
 * Gateways answer most requests from their cache, so `auth` does not see each use of a key; each gateway reports
 * the keys it served, at most once a minute, and `auth` keeps `last_used_at` from these reports.
 */
export const KeysUsed = z.object({
  keys: z
    .array(z.object({ keyId: z.string(), lastUsedAt: z.number().int().nonnegative() }))
    .min(1)
    .max(10_000),
});
export type KeysUsed = z.infer<typeof KeysUsed>;

export const keysUsed = eventSubject("auth.v1.keys.used", KeysUsed);
