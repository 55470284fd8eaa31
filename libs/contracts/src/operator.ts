import { z } from "zod";
import { OperatorPrincipal } from "./auth.js";
import { requestSubject } from "./definitions.js";
import { AdminApiKeyCreated, deletedObject, listOf } from "./openai-admin.js";

/**
 * The operator's routes (`/v1/operator/...`), an extension: OpenAI has no equivalent, since there an organization is
 * made by signing up. Organizations are created, suspended and deleted here, and their SSO is configured here.
 */

/**
 * Whether an issuer's keys may be fetched from `uri`. Plain http would let anyone on the path substitute the issuer's
 * keys, so it is only tolerated when the traffic cannot leave the machine (a development identity provider).
 */
export function isAcceptableJwksUri(uri: string): boolean {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    return false;
  }
  if (url.protocol === "https:") return true;
  return url.protocol === "http:" && isLoopbackHost(url.hostname);
}

function isLoopbackHost(hostname: string): boolean {
  // WHATWG URL parsing has already normalised IPv4 forms and lower-cased names, and brackets IPv6.
  return hostname === "localhost" || hostname === "[::1]" || /^127\.\d+\.\d+\.\d+$/.test(hostname);
}

const ClaimValues = z.array(z.string().min(1).max(256)).max(64);

/** How an organization's administrators sign in: an OpenID Connect issuer and how its claims map to roles. */
export const OidcSettings = z.strictObject({
  issuer: z.string().min(1).max(512),
  audience: z.string().min(1).max(512),
  jwks_uri: z
    .string()
    .max(2048)
    .refine(isAcceptableJwksUri, "jwks_uri must be an https URL (http is accepted on loopback hosts only)"),
  /** Dotted path to the claim that carries the roles, e.g. `groups` or `realm_access.roles`. */
  role_claim: z.string().min(1).max(256),
  owner_values: ClaimValues.min(1),
  reader_values: ClaimValues,
});
export type OidcSettings = z.infer<typeof OidcSettings>;

const OrganizationStatus = z.enum(["active", "suspended", "deleted"]);

export const Organization = z.object({
  id: z.string(),
  object: z.literal("organization"),
  name: z.string(),
  status: OrganizationStatus,
  created_at: z.number().int(),
  suspended_at: z.number().int().nullable(),
  deleted_at: z.number().int().nullable(),
  oidc: OidcSettings.nullable(),
});
export type Organization = z.infer<typeof Organization>;

export const OrganizationCreated = Organization.extend({ admin_api_key: AdminApiKeyCreated });
export type OrganizationCreated = z.infer<typeof OrganizationCreated>;

export const OrganizationCreateBody = z.strictObject({ name: z.string().trim().min(1).max(256) });
export const OrganizationAdminKeyCreateBody = z.strictObject({
  name: z.string().trim().min(1).max(256),
  expires_in_seconds: z.number().int().min(1).max(31_536_000).optional(),
});

function operatorSubject<Shape extends z.ZodRawShape, Rep extends z.ZodType>(
  name: string,
  shape: Shape,
  reply: Rep,
) {
  return requestSubject(`operator.v1.${name}`, z.object({ principal: OperatorPrincipal, ...shape }), reply);
}

const OrganizationRef = { organizationId: z.string().min(1).max(128) };

export const operatorSubjects = {
  organizationsCreate: operatorSubject("organizations.create", { name: z.string() }, OrganizationCreated),
  organizationsList: operatorSubject(
    "organizations.list",
    {
      limit: z.number().int().min(1).max(100),
      after: z.string().nullable(),
      includeDeleted: z.boolean(),
    },
    listOf(Organization),
  ),
  organizationsRetrieve: operatorSubject("organizations.retrieve", OrganizationRef, Organization),
  organizationsSuspend: operatorSubject("organizations.suspend", OrganizationRef, Organization),
  organizationsResume: operatorSubject("organizations.resume", OrganizationRef, Organization),
  organizationsDelete: operatorSubject(
    "organizations.delete",
    OrganizationRef,
    deletedObject("organization.deleted"),
  ),
  /** null removes the organization's SSO: its administrators can no longer sign in. */
  organizationsSetOidc: operatorSubject(
    "organizations.oidc.set",
    { ...OrganizationRef, oidc: OidcSettings.nullable() },
    Organization,
  ),
  /** A new admin key for an organization that has lost all of its own (or for `infra/up`'s demo). */
  organizationsCreateAdminKey: operatorSubject(
    "organizations.admin_keys.create",
    { ...OrganizationRef, name: z.string(), expiresInSeconds: z.number().int().positive().nullable() },
    AdminApiKeyCreated,
  ),
};
