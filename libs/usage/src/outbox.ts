import type { Bus } from "@llmaas/bus";
import { UsageEvent, usageRecorded } from "@llmaas/contracts";
import type { Logger } from "@llmaas/telemetry";

export interface UsageOutboxOptions {
  bus: Bus;
  logger: Logger;
  /** The wait before the first retry; it doubles after each failed round, up to `maxBackoffMs`. */
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  /** How many events are published at once. */
  concurrency?: number;
}

/**
 * The worker's usage events on their way to JetStream. Usage is money, so an event is never given up on: `enqueue`
 * keeps it in memory and returns at once, and a background loop publishes it until the server acknowledges it,
 * retrying with capped exponential backoff while NATS cannot be reached. The request id is the `Nats-Msg-Id`, so a
 * publish retried after its acknowledgement was lost is stored once (and metering keys its rows on it too).
 *
 * One outbox per process. At shutdown `drain` gives it a last chance and logs, by id and counts, whatever is left.
 * Events are ids and counts only, never content, so they can be logged whole.
 */
export class UsageOutbox {
  private readonly bus: Bus;
  private readonly logger: Logger;
  private readonly initialBackoffMs: number;
  private readonly maxBackoffMs: number;
  private readonly concurrency: number;
  /** Not yet acknowledged, by request id: the same event enqueued twice is kept once. */
  private readonly events = new Map<string, UsageEvent>();
  private running = false;
  private closed = false;
  /** When publishing started failing; null while it works. */
  private failingSince: number | null = null;
  private wakeUp: (() => void) | null = null;
  private readonly emptyWaiters = new Set<() => void>();

  constructor(options: UsageOutboxOptions) {
    this.bus = options.bus;
    this.logger = options.logger;
    this.initialBackoffMs = options.initialBackoffMs ?? 100;
    this.maxBackoffMs = options.maxBackoffMs ?? 5_000;
    this.concurrency = options.concurrency ?? 64;
  }

  /** Events not yet acknowledged by JetStream. */
  get pending(): number {
    return this.events.size;
  }

  /** Takes the event and returns at once; it is published in the background, retried until acknowledged. */
  enqueue(event: UsageEvent): void {
    if (this.closed) {
      this.logger.error({ usage: event }, "usage event recorded after shutdown; it was not published");
      return;
    }
    // Checked here rather than at publish time: an event the schema refuses would otherwise be retried forever.
    const checked = UsageEvent.safeParse(event);
    if (!checked.success) {
      this.logger.error(
        {
          requestId: event.requestId,
          problems: checked.error.issues.map((issue) => `${issue.path.join(".")}: ${issue.message}`),
        },
        "invalid usage event; it was not published",
      );
      return;
    }
    if (!this.events.has(event.requestId)) this.events.set(event.requestId, event);
    if (!this.running) {
      this.running = true;
      void this.run();
    }
  }

  /**
   * At shutdown, once no more events can come: publishes what is left for at most `timeoutMs`, then stops, and
   * logs an error with the ids and counts of the events it could not publish, so they can be entered by hand (the
   * request id keeps that idempotent). Resolves with how many were left.
   */
  async drain(timeoutMs: number): Promise<number> {
    if (this.events.size > 0) {
      // A backoff in progress is cut short: this is the last chance.
      this.wakeUp?.();
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        new Promise<void>((resolve) => this.emptyWaiters.add(resolve)),
        new Promise<void>((resolve) => (timer = setTimeout(resolve, Math.max(0, timeoutMs)))),
      ]);
      clearTimeout(timer);
      this.emptyWaiters.clear();
    }
    this.closed = true;
    this.wakeUp?.();
    const left = [...this.events.values()];
    if (left.length > 0) {
      this.logger.error(
        { unpublished: left.length, usage: left },
        "usage events could not be published before shutdown",
      );
    }
    return left.length;
  }

  private async run(): Promise<void> {
    let backoffMs = this.initialBackoffMs;
    try {
      while (this.events.size > 0 && !this.closed) {
        const round = [...this.events.values()].slice(0, this.concurrency);
        const results = await Promise.allSettled(round.map((event) => this.publish(event)));
        const failure = results.find((result) => result.status === "rejected");
        if (!failure) {
          if (this.failingSince !== null) {
            this.logger.info(
              { failedForMs: Date.now() - this.failingSince, pending: this.events.size },
              "usage events are being published again",
            );
            this.failingSince = null;
          }
          backoffMs = this.initialBackoffMs;
          continue;
        }
        if (this.failingSince === null) {
          this.failingSince = Date.now();
          this.logger.warn(
            { err: failure.reason as unknown, pending: this.events.size },
            "usage events cannot be published; keeping them in memory and retrying",
          );
        }
        if (this.closed) break;
        await this.sleep(backoffMs);
        backoffMs = Math.min(backoffMs * 2, this.maxBackoffMs);
      }
    } finally {
      // Synchronously after the last check of the queue, so an event enqueued from now on starts a new loop.
      this.running = false;
    }
  }

  private async publish(event: UsageEvent): Promise<void> {
    await this.bus.publishDurable(usageRecorded, event, event.requestId);
    this.events.delete(event.requestId);
    if (this.events.size === 0) {
      for (const resolve of this.emptyWaiters) resolve();
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.wakeUp = null;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wakeUp = done;
    });
  }
}
