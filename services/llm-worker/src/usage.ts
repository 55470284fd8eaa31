import type { Bus } from "@llmaas/bus";
import { usageRecorded, type AuthPrincipal, type UsageEvent } from "@llmaas/contracts";
import type { Logger } from "@llmaas/telemetry";

const USAGE_PUBLISH_ATTEMPTS = 5;

/**
 * Publishes one request's usage to JetStream, retrying with backoff; the request id is the message id, so a retried
 * publish is stored once.
 */
export async function publishUsage(bus: Bus, logger: Logger, event: UsageEvent): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await bus.publishDurable(usageRecorded, event, event.requestId);
      return;
    } catch (error) {
      if (attempt >= USAGE_PUBLISH_ATTEMPTS) {
        // Only ids and counts: enough to re-enter the record by hand, nothing of the content.
        logger.error({ err: error, usage: event }, "usage event could not be published");
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, 200 * 2 ** attempt));
    }
  }
}

/** The usage record of one request, as both chat and embedding workers report it when the work ends. */
export function usageEventOf(
  request: { requestId: string; principal: AuthPrincipal; endUser: string | null },
  work: Pick<
    UsageEvent,
    "model" | "operation" | "promptTokens" | "completionTokens" | "status" | "servedBy"
  > & {
    startedAt: Date;
  },
): UsageEvent {
  return {
    version: 2,
    requestId: request.requestId,
    organizationId: request.principal.organizationId,
    projectId: request.principal.projectId,
    keyId: request.principal.keyId,
    endUser: request.endUser,
    ...work,
    startedAt: work.startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
  };
}
