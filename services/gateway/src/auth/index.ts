import type { FastifyInstance, FastifyRequest } from "fastify";
import type { Bus } from "@llmaas/bus";
import {
  authAuthenticate,
  credentialsRevoked,
  PlatformError,
  readerMayNotChange,
  type AdminPrincipal,
  type ApiKeyPrincipal,
  type AuthPrincipal,
  type OperatorPrincipal,
  type Principal,
} from "@llmaas/contracts";
import { inRequestContext } from "../tracing.js";
import type { KeyCache } from "./key-cache.js";
import type { KeyUsageReporter } from "./key-usage.js";

declare module "fastify" {
  interface FastifyRequest {
    /** Who is calling; set before the body is read on every `/v1/` route. Narrow it with the helpers below. */
    principal: Principal;
  }
}

/**
 * Which credentials a route takes: project API keys the inference API, admin keys and administrators' tokens their
 * organization's Administration API, the operator token the operator's routes. Anything else is a 403.
 */
type RouteScope = "inference" | "organization" | "operator";

function scopeOf(url: string): RouteScope | null {
  const path = url.split("?", 1)[0] ?? "";
  if (!path.startsWith("/v1/")) return null;
  if (path === "/v1/organization" || path.startsWith("/v1/organization/")) return "organization";
  if (path === "/v1/operator" || path.startsWith("/v1/operator/")) return "operator";
  return "inference";
}

const WRONG_CREDENTIAL: Record<RouteScope, string> = {
  inference:
    "This route takes a project API key (sk-lm-proj-…); admin API keys, administrators' tokens and the operator " +
    "token do not call models.",
  organization:
    "The Administration API takes an admin API key (sk-lm-admin-…) or an administrator's sign-in token, not a " +
    "project API key or the operator token.",
  operator: "This route is the platform operator's and takes the operator token only.",
};

function checkScope(scope: RouteScope, principal: Principal, method: string): void {
  const accepted =
    scope === "inference"
      ? principal.kind === "api_key"
      : scope === "organization"
        ? principal.kind === "admin_key" || principal.kind === "administrator"
        : principal.kind === "operator";
  if (!accepted) throw new PlatformError("permission_denied", WRONG_CREDENTIAL[scope]);
  if (scope === "organization" && "role" in principal && principal.role === "reader" && !isRead(method)) {
    throw readerMayNotChange();
  }
}

function isRead(method: string): boolean {
  return method === "GET" || method === "HEAD";
}

const BEARER = /^Bearer\s+(\S+)\s*$/i;

function bearerOf(request: FastifyRequest): string {
  const header = request.headers.authorization;
  const credential = header ? BEARER.exec(header)?.[1] : undefined;
  if (!credential) {
    throw new PlatformError(
      "missing_api_key",
      "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer " +
        "auth (i.e. Authorization: Bearer YOUR_KEY).",
    );
  }
  return credential;
}

function headerValue(value: string | string[] | undefined, maxLength: number): string | null {
  const text = Array.isArray(value) ? value[0] : value;
  return text ? text.slice(0, maxLength) : null;
}

export interface AuthenticationOptions {
  bus: Bus;
  cache: KeyCache;
  usage: KeyUsageReporter;
  timeoutMs: number;
}

/**
 * Authenticates every `/v1/` request before its body is read, so an anonymous client cannot make the gateway parse
 * anything. API keys come from the cache when they can; the cache follows `auth`'s revocations and starts over
 * when the connection to NATS comes back.
 */
export function registerAuthentication(app: FastifyInstance, options: AuthenticationOptions): void {
  const { bus, cache, usage, timeoutMs } = options;
  bus.subscribe(credentialsRevoked, credentialsRevoked.subject, (revocation) => cache.revoke(revocation));
  bus.onReconnect(() => cache.clear());
  app.addHook("onClose", async () => usage.stop());

  app.decorateRequest<Principal, "principal">("principal", null as unknown as Principal);
  app.addHook("onRequest", async (request) => {
    const scope = scopeOf(request.url);
    if (!scope) return;
    const credential = bearerOf(request);
    const principal = await inRequestContext(request, () =>
      cache.resolve(credential, () =>
        bus.request(
          authAuthenticate,
          authAuthenticate.subject,
          {
            credential,
            organizationHint: headerValue(request.headers["openai-organization"], 128),
            client: { ip: request.ip, userAgent: headerValue(request.headers["user-agent"], 512) },
          },
          { timeoutMs },
        ),
      ),
    );
    checkScope(scope, principal, request.method);
    if (principal.kind === "api_key") usage.used(principal.keyId);
    request.principal = principal;
  });
}

function wrongPrincipal(): PlatformError {
  // The scope check makes this unreachable: a route asking for the wrong kind is a programming error.
  return new PlatformError("internal_error", "The server had an error while processing your request.");
}

export function apiKeyOf(request: FastifyRequest): ApiKeyPrincipal {
  if (request.principal.kind !== "api_key") throw wrongPrincipal();
  return request.principal;
}

export function adminOf(request: FastifyRequest): AdminPrincipal {
  const principal = request.principal;
  if (principal.kind !== "admin_key" && principal.kind !== "administrator") throw wrongPrincipal();
  return principal;
}

export function operatorOf(request: FastifyRequest): OperatorPrincipal {
  if (request.principal.kind !== "operator") throw wrongPrincipal();
  return request.principal;
}

/** What an inference request is attributed to: carried to the worker and into its usage event. */
export function attributionOf(principal: ApiKeyPrincipal): AuthPrincipal {
  return { organizationId: principal.organizationId, projectId: principal.projectId, keyId: principal.keyId };
}
