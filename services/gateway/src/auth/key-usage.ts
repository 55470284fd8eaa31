import type { Bus } from "@llmaas/bus";
import { keysUsed } from "@llmaas/contracts";

const MAX_KEYS_PER_REPORT = 10_000;

/**
 * Remembers which API keys this gateway served and when last, and reports them to `auth` every `intervalMs`: keys'
 * `last_used_at` is kept to that resolution without a write, or even a message, per request.
 */
export class KeyUsageReporter {
  private lastUsed = new Map<string, number>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly bus: Bus,
    intervalMs: number,
  ) {
    this.timer = setInterval(() => this.report(), intervalMs);
    this.timer.unref();
  }

  used(keyId: string, at = Date.now()): void {
    this.lastUsed.set(keyId, at);
  }

  /** Sends what was seen since the last report; called on the timer and once more when the gateway stops. */
  report(): void {
    if (this.lastUsed.size === 0) return;
    const keys = [...this.lastUsed].map(([keyId, lastUsedAt]) => ({ keyId, lastUsedAt }));
    this.lastUsed = new Map();
    for (let start = 0; start < keys.length; start += MAX_KEYS_PER_REPORT) {
      this.bus.publish(keysUsed, keysUsed.subject, { keys: keys.slice(start, start + MAX_KEYS_PER_REPORT) });
    }
  }

  stop(): void {
    clearInterval(this.timer);
    this.report();
  }
}
