import type { Bus } from "@llmaas/bus";
import { usageLookup, type TokenUsage } from "@llmaas/contracts";
import type { Logger } from "@llmaas/telemetry";

/** What one model request used: tokens, and for a transcription whole seconds of audio. */
export type SettledUsage = TokenUsage & { audioSeconds: number };

/** One model request of an admitted HTTP request, and the usage its worker reports in band (null if it did not). */
export interface SettlementPart {
  requestId: string;
  usage: Promise<(TokenUsage & { audioSeconds?: number }) | null>;
}

export interface UsageSettlerOptions {
  /** How often requests that ended without usage in band are looked up in metering. */
  lookupIntervalMs: number;
  /**
   * After this long a request still not recorded counts as having used nothing: its worker died before its usage
   * event left it, so nothing will be metered (or billed) for it. Documented in docs/quotas.md.
   */
  maxWaitMs: number;
  timeoutMs: number;
}

export const DEFAULT_USAGE_SETTLER_OPTIONS: UsageSettlerOptions = {
  lookupIntervalMs: 2_000,
  maxWaitMs: 120_000,
  timeoutMs: 5_000,
};

const MAX_LOOKUP_IDS = 500;

interface Orphan {
  since: number;
  resolve(usage: SettledUsage): void;
}

/**
 * Finds the usage of requests whose workers did not report it in band, from what metering recorded: a reservation
 * is settled from the metered usage, or released once no usage can come any more.
 */
export class UsageSettler {
  private readonly orphans = new Map<string, Orphan>();
  private readonly timer: NodeJS.Timeout;
  private looking = false;

  constructor(
    private readonly bus: Bus,
    private readonly logger: Logger,
    private readonly options: UsageSettlerOptions = DEFAULT_USAGE_SETTLER_OPTIONS,
  ) {
    this.timer = setInterval(() => void this.lookUp(), options.lookupIntervalMs);
    this.timer.unref();
  }

  /** The summed usage of every part, each from its worker or else from metering. */
  async usageOf(parts: readonly SettlementPart[]): Promise<SettledUsage> {
    const usages = await Promise.all(
      parts.map(async (part) => (await part.usage) ?? this.fromMetering(part.requestId)),
    );
    return usages.reduce<SettledUsage>(
      (sum, usage) => ({
        promptTokens: sum.promptTokens + usage.promptTokens,
        completionTokens: sum.completionTokens + usage.completionTokens,
        audioSeconds: sum.audioSeconds + (usage.audioSeconds ?? 0),
      }),
      { promptTokens: 0, completionTokens: 0, audioSeconds: 0 },
    );
  }

  get waiting(): number {
    return this.orphans.size;
  }

  private fromMetering(requestId: string): Promise<SettledUsage> {
    return new Promise((resolve) => this.orphans.set(requestId, { since: Date.now(), resolve }));
  }

  private async lookUp(nowMs = Date.now()): Promise<void> {
    if (this.looking || this.orphans.size === 0) return;
    this.looking = true;
    try {
      const ids = [...this.orphans.keys()];
      for (let from = 0; from < ids.length; from += MAX_LOOKUP_IDS) {
        const requestIds = ids.slice(from, from + MAX_LOOKUP_IDS);
        const { recorded } = await this.bus.request(
          usageLookup,
          usageLookup.subject,
          { requestIds },
          { timeoutMs: this.options.timeoutMs },
        );
        for (const usage of recorded) {
          this.orphans.get(usage.requestId)?.resolve(usage);
          this.orphans.delete(usage.requestId);
        }
      }
    } catch (err) {
      this.logger.warn({ err }, "usage of unsettled requests not looked up; trying again");
    } finally {
      this.looking = false;
    }
    for (const [requestId, orphan] of this.orphans) {
      if (nowMs - orphan.since < this.options.maxWaitMs) continue;
      this.orphans.delete(requestId);
      orphan.resolve({ promptTokens: 0, completionTokens: 0, audioSeconds: 0 });
    }
  }

  /**
   * Stops looking. Whatever still waits stays reserved: the leases give back only what no request holds, so usage
   * that metering may still record is never let past a limit by a gateway that stops.
   */
  close(): void {
    clearInterval(this.timer);
  }
}
