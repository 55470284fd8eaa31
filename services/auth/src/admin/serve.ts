import type { z } from "zod";
import type { Bus, Subscription } from "@llmaas/bus";
import {
  PlatformError,
  readerMayNotChange,
  type AdminPrincipal,
  type AdminSubject,
  type RequestSubject,
} from "@llmaas/contracts";
import type { AuthContext } from "../context.js";

/** Every auth instance answers in one queue group, so any of them may serve any request. */
export const AUTH_QUEUE = "auth";

export function notFound(kind: string, id: string): PlatformError {
  return new PlatformError("not_found", `No ${kind} found with id '${id}'.`);
}

/**
 * Answers a bus subject in the auth queue group. Every subject is served this way, so that running several auth
 * instances never makes one request answered twice.
 */
export function serveInQueue<Req extends z.ZodType, Rep extends z.ZodType>(
  bus: Bus,
  subject: RequestSubject<Req, Rep>,
  handler: (request: z.output<Req>) => Promise<z.input<Rep>>,
): Subscription {
  return bus.serve(subject, subject.subject, handler, { queue: AUTH_QUEUE });
}

/**
 * Serves one Administration API subject. A `write` is refused to readers, and to suspended organizations, whose
 * administrators may still read and export what they configured.
 */
export function serveAdmin<Req extends z.ZodType<{ principal: AdminPrincipal }>, Rep extends z.ZodType>(
  bus: Bus,
  ctx: AuthContext,
  subject: AdminSubject<Req, Rep>,
  handler: (request: z.output<Req>) => Promise<z.input<Rep>>,
): Subscription {
  return serveInQueue(bus, subject, async (request) => {
    if (subject.access === "write") await checkMayChange(ctx, request.principal);
    return handler(request);
  });
}

async function checkMayChange(ctx: AuthContext, principal: AdminPrincipal): Promise<void> {
  if (principal.role !== "owner") throw readerMayNotChange();
  const organization = await ctx.db
    .selectFrom("organizations")
    .select("status")
    .where("id", "=", principal.organizationId)
    .executeTakeFirst();
  if (organization?.status !== "active") {
    throw new PlatformError(
      "permission_denied",
      "This organization is suspended: its configuration can be read and exported, not changed.",
    );
  }
}
