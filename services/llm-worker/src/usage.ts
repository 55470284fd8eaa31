import type { AuthPrincipal, UsageEvent } from "@llmaas/contracts";

/**
 * The usage record of one request, as both chat and embedding workers report it when the work ends; they hand it to
 * the process's `UsageOutbox` (usage-outbox.ts), which publishes it until JetStream acknowledges it.
 */
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
    // Chat, completions and embeddings take no audio.
    audioSeconds: 0,
    ...work,
    startedAt: work.startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
  };
}
