import type { FastifyRequest } from "fastify";
import type { Bus } from "@llmaas/bus";
import { authVerify, PlatformError, type AuthPrincipal } from "@llmaas/contracts";

declare module "fastify" {
  interface FastifyRequest {
    principal: AuthPrincipal;
  }
}

const BEARER = /^Bearer\s+(\S+)\s*$/i;

/** Resolves the request's Bearer key to a principal through the auth service. */
export async function authenticate(
  bus: Bus,
  request: FastifyRequest,
  timeoutMs: number,
): Promise<AuthPrincipal> {
  const header = request.headers.authorization;
  const apiKey = header ? BEARER.exec(header)?.[1] : undefined;
  if (!apiKey) {
    throw new PlatformError(
      "missing_api_key",
      "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer " +
        "auth (i.e. Authorization: Bearer YOUR_KEY).",
    );
  }
  return bus.request(authVerify, authVerify.subject, { apiKey }, { timeoutMs });
}
