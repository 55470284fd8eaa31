import { metrics } from "@opentelemetry/api";
import type { JsMsg } from "@nats-io/jetstream";
import type { Bus } from "@llmaas/bus";
import { usageDeadLettered } from "@llmaas/contracts";
import type { Logger } from "@llmaas/telemetry";

const deadLetterCounter = metrics.getMeter("metering").createCounter("metering.usage.dead_letters", {
  description: "Usage messages metering set aside unrecorded",
});

/**
 * Usage messages that cannot be recorded are moved, never dropped: each is published with its reason to
 * `metering.v1.usage.dead_lettered` (the persisted METERING stream), counted, logged, and only then removed from the
 * usage consumer. If the move itself fails, the message stays where it is and comes back later.
 */
export class DeadLetters {
  private moved = 0;

  constructor(
    private readonly bus: Bus,
    private readonly logger: Logger,
    private readonly retryDelayMs: number,
  ) {}

  /** How many messages this instance has dead-lettered since it started. */
  get count(): number {
    return this.moved;
  }

  async add(msg: JsMsg, reason: string): Promise<void> {
    const deadLetter = {
      streamSequence: msg.seq,
      subject: msg.subject,
      deliveries: msg.info.deliveryCount,
      reason,
      data: msg.string(),
      deadLetteredAt: new Date().toISOString(),
    };
    try {
      // Keyed by the stream sequence: moved twice (a crash between publish and term), it is stored once.
      await this.bus.publishDurable(usageDeadLettered, deadLetter, `usage-${msg.seq}`);
    } catch (error) {
      this.logger.error(
        { err: error, streamSequence: msg.seq },
        "usage message could not be dead-lettered yet",
      );
      msg.nak(this.retryDelayMs);
      return;
    }
    msg.term(reason);
    this.moved += 1;
    deadLetterCounter.add(1);
    // The message's ids and counts only: usage events carry no content.
    this.logger.error(
      { streamSequence: msg.seq, deliveries: deadLetter.deliveries, reason, deadLetters: this.moved },
      "usage message dead-lettered",
    );
  }
}
