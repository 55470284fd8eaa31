import type { AuthPrincipal, UsageEvent } from "@llmaas/contracts";

/**
 * The usage record of one request, as every worker reports it when the work ends; it hands it to the process's
 * `UsageOutbox` (outbox.ts), which publishes it until JetStream acknowledges it.
 */
export function usageEventOf(
  request: { requestId: string; principal: AuthPrincipal; endUser: string | null },
  work: Pick<
    UsageEvent,
    "model" | "operation" | "promptTokens" | "completionTokens" | "status" | "servedBy"
  > & {
    /** Whole seconds of audio, for a transcription; none for text. */
    audioSeconds?: number;
    /** Texts screened, for the guardrail's screening endpoint. */
    screenedInputs?: number;
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
    audioSeconds: work.audioSeconds ?? 0,
    screenedInputs: work.screenedInputs ?? 0,
    startedAt: work.startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
  };
}
