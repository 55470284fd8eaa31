import { randomBytes } from "node:crypto";
import type { Bus, Subscription } from "@llmaas/bus";
import {
  MAX_LEASES_PER_MESSAGE,
  PlatformError,
  quotaLease,
  quotaRecall,
  quotaReport,
  type LeaseAsk,
  type LeaseGrant,
  type LeaseReport,
} from "@llmaas/contracts";
import type { Logger } from "@llmaas/telemetry";
import { amountOf, windowOf, type CounterSpec, type Demand, type RequestCost } from "./counters.js";

/**
 * A gateway's side of the quota ledger (docs/quotas.md). It holds leases, parts of each counter's window granted by
 * `auth`, and admits a request in memory when its leases cover what the request may cost: no round trip while they
 * last. When one falls short it asks `auth` for more, for all the requests waiting at that moment in one message.
 * What a request did not use goes back to the lease when the request settles; what a lease does not need is given
 * back to `auth` after a quiet spell or when `auth` recalls it, so other gateways can have it.
 */

export interface QuotaLedgerOptions {
  /** How often consumption and returns are reported to `auth`. */
  reportIntervalMs: number;
  /** A lease not drawn on for this long gives back what it holds. */
  idleReturnMs: number;
  /**
   * When a lease falls short, ask for enough for this many more requests like the largest one waiting. The number
   * doubles each time the same lease falls short again within `busyRefillMs`, up to `maxLeaseRequests`, so a busy
   * lease asks rarely; it starts over once the lease has gone idle and given back what it held.
   */
  leaseRequests: number;
  maxLeaseRequests: number;
  busyRefillMs: number;
  timeoutMs: number;
}

export const DEFAULT_QUOTA_LEDGER_OPTIONS: QuotaLedgerOptions = {
  reportIntervalMs: 1_000,
  idleReturnMs: 2_000,
  leaseRequests: 8,
  maxLeaseRequests: 1024,
  busyRefillMs: 1_000,
  timeoutMs: 5_000,
};

/** How a lease stands on this gateway. `free` may go below 0 when a request used more than it reserved. */
class Lease {
  granted = 0n;
  consumed = 0n;
  returned = 0n;
  /** Reserved by requests in flight. */
  pending = 0n;
  /** The whole window's outstanding amount at `auth`, as of the last grant, and what we had returned then. */
  outstandingAtGrant = 0n;
  returnedAtGrant = 0n;
  reported = { consumed: 0n, returned: 0n };
  lastDrawnAt = 0;
  lastAskedAt = -Infinity;
  /** How many requests' worth the next ask wants (see `QuotaLedgerOptions.leaseRequests`). */
  leaseRequests: number;

  constructor(
    /** Replaced when a reloaded principal states another limit: the newest applies, here and at auth. */
    public spec: CounterSpec,
    readonly windowStart: number,
    readonly windowEnd: number,
    private readonly baseLeaseRequests: number,
  ) {
    this.leaseRequests = baseLeaseRequests;
  }

  get free(): bigint {
    return this.granted - this.returned - this.consumed - this.pending;
  }

  /** The limit minus what every gateway has used or reserved, as far as this gateway knows. */
  get remaining(): bigint {
    const chargedElsewhereOrUsed =
      this.outstandingAtGrant - (this.returned - this.returnedAtGrant) - this.free;
    const remaining = this.spec.limit - chargedElsewhereOrUsed;
    return remaining > 0n ? remaining : 0n;
  }

  giveBackFree(): void {
    const free = this.free;
    if (free > 0n) this.returned += free;
    this.leaseRequests = this.baseLeaseRequests;
  }

  report(): LeaseReport | null {
    if (this.reported.consumed === this.consumed && this.reported.returned === this.returned) return null;
    return {
      counter: this.spec.counter,
      windowStart: this.windowStart,
      consumed: this.consumed.toString(),
      returned: this.returned.toString(),
    };
  }
}

export class QuotaRefused extends Error {
  override readonly name = "QuotaRefused";
  constructor(
    readonly demand: Demand,
    readonly lease: Lease,
  ) {
    super(`not admitted: ${demand.spec.description}`);
  }
}

/** `unavailable`: auth did not answer, so nothing can be admitted on that lease for now. */
type AskOutcome = LeaseGrant | "unavailable";

interface WaitingAsk {
  lease: Lease;
  /** What the lease lacks for the waiting request. */
  need: bigint;
  /** What that request takes from the lease in all: the measure of "requests like it". */
  size: bigint;
  resolve(outcome: AskOutcome): void;
}

/** What a request holds of each lease until it settles; settled exactly once. */
export class Reservation {
  private settled = false;

  constructor(
    readonly entries: readonly { lease: Lease; spec: CounterSpec; amount: bigint }[],
    readonly reserved: RequestCost,
  ) {}

  /** The request is over and `used` is what it cost: the rest goes back to the leases. */
  settle(used: RequestCost): void {
    if (this.settled) return;
    this.settled = true;
    for (const entry of this.entries) {
      entry.lease.pending -= entry.amount;
      entry.lease.consumed += amountOf(entry.spec, used);
    }
  }

  /** The leases this request drew on that OpenAI's headers speak for. */
  headerLeases(): { requests: Lease | null; tokens: Lease | null } {
    const tightest = (kind: "requests" | "tokens"): Lease | null =>
      this.entries
        .filter((entry) => entry.spec.header === kind)
        .map((entry) => entry.lease)
        .reduce<Lease | null>(
          (best, lease) => (best === null || lease.remaining < best.remaining ? lease : best),
          null,
        );
    return { requests: tightest("requests"), tokens: tightest("tokens") };
  }
}

export type { Lease };

export class QuotaLedger {
  readonly gatewayId = `gw-${randomBytes(8).toString("hex")}`;
  private readonly leases = new Map<string, Lease>();
  private waiting: WaitingAsk[] = [];
  private asking = false;
  private readonly timer: NodeJS.Timeout;
  private readonly recalls: Subscription;
  private reporting: Promise<void> = Promise.resolve();

  constructor(
    private readonly bus: Bus,
    private readonly logger: Logger,
    private readonly options: QuotaLedgerOptions = DEFAULT_QUOTA_LEDGER_OPTIONS,
  ) {
    this.timer = setInterval(() => this.tick(), options.reportIntervalMs);
    this.timer.unref();
    this.recalls = bus.subscribe(quotaRecall, quotaRecall.subject, (window) => {
      const lease = this.leases.get(leaseKey(window.counter, window.windowStart));
      if (!lease) return;
      lease.giveBackFree();
      this.report();
    });
  }

  /**
   * Reserves `demands` on every lease at once, or on none: the request is admitted, or refused naming the first
   * counter that cannot take it. Leases that fall short are refilled from `auth`. When `auth` cannot grant a refill
   * while other gateways hold part of the window, it recalls what they hold idle, and the refill is tried again after
   * a growing wait (`RECALL_WAITS_MS`): a refusal near a limit is never for capacity that sat unused elsewhere.
   */
  async admit(demands: readonly Demand[], reserved: RequestCost, nowMs = Date.now()): Promise<Reservation> {
    const leases = demands.map((demand) => this.leaseFor(demand.spec, nowMs));
    const refusals = new Map<Lease, number>();
    for (;;) {
      const shortIndex = demands.findIndex((demand, index) => (leases[index] as Lease).free < demand.amount);
      if (shortIndex === -1) {
        const entries = demands.map((demand, index) => {
          const lease = leases[index] as Lease;
          lease.pending += demand.amount;
          lease.lastDrawnAt = nowMs;
          return { lease, spec: demand.spec, amount: demand.amount };
        });
        return new Reservation(entries, reserved);
      }
      const short = demands
        .map((demand, index) => ({ demand, lease: leases[index] as Lease }))
        .filter(({ demand, lease }) => lease.free < demand.amount);
      const outcomes = await Promise.all(
        short.map(({ demand, lease }) => this.ask(lease, demand.amount - lease.free, demand.amount)),
      );
      if (outcomes.includes("unavailable")) {
        throw new PlatformError(
          "service_unavailable",
          "Your limits could not be checked: the quota service did not answer in time. Please retry.",
        );
      }
      let wait = 0;
      for (const [index, outcome] of outcomes.entries()) {
        if (outcome === "unavailable" || BigInt(outcome.granted) > 0n) continue;
        const { demand, lease } = short[index] as (typeof short)[number];
        const heldElsewhere = BigInt(outcome.outstanding) - (lease.granted - lease.returned);
        const attempt = refusals.get(lease) ?? 0;
        const next = RECALL_WAITS_MS[attempt];
        if (heldElsewhere <= 0n || next === undefined) throw new QuotaRefused(demand, lease);
        refusals.set(lease, attempt + 1);
        wait = Math.max(wait, next);
      }
      // auth recalled what other gateways hold idle: give their returns a moment to arrive.
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    }
  }

  private leaseFor(spec: CounterSpec, nowMs: number): Lease {
    const window = windowOf(spec.interval, nowMs);
    const key = leaseKey(spec.counter, window.start);
    let lease = this.leases.get(key);
    if (!lease) {
      lease = new Lease(spec, window.start, window.end, this.options.leaseRequests);
      this.leases.set(key, lease);
    } else if (lease.spec.limit !== spec.limit) {
      // What it holds was granted under the old limit: given back, it is asked for again under the new one.
      lease.spec = spec;
      lease.giveBackFree();
    }
    return lease;
  }

  /**
   * Queues an ask for `need` more on `lease`. Asks made in the same turn of the event loop (every counter of one
   * request, and of other requests arriving together) go in one message, and all asks queued while a message is out
   * go in the next.
   */
  private ask(lease: Lease, need: bigint, size: bigint): Promise<AskOutcome> {
    return new Promise((resolve) => {
      this.waiting.push({ lease, need, size, resolve });
      if (this.asking) return;
      this.asking = true;
      queueMicrotask(() => void this.sendAsks());
    });
  }

  private async sendAsks(): Promise<void> {
    try {
      while (this.waiting.length > 0) {
        const batch = this.waiting;
        this.waiting = [];
        const byLease = new Map<Lease, WaitingAsk[]>();
        for (const waiting of batch)
          byLease.set(waiting.lease, [...(byLease.get(waiting.lease) ?? []), waiting]);
        const entries = [...byLease.entries()];
        for (let from = 0; from < entries.length; from += MAX_LEASES_PER_MESSAGE) {
          await this.sendAskMessage(entries.slice(from, from + MAX_LEASES_PER_MESSAGE));
        }
      }
    } finally {
      this.asking = false;
    }
  }

  private async sendAskMessage(entries: [Lease, WaitingAsk[]][]): Promise<void> {
    const now = Date.now();
    const asks: LeaseAsk[] = entries.map(([lease, waiting]) => {
      const needs = waiting.map((ask) => ask.need);
      const smallest = needs.reduce((a, b) => (b < a ? b : a));
      const total = needs.reduce((a, b) => a + b, 0n);
      const largest = waiting.map((ask) => ask.size).reduce((a, b) => (b > a ? b : a));
      if (now - lease.lastAskedAt < this.options.busyRefillMs) {
        lease.leaseRequests = Math.min(lease.leaseRequests * 2, this.options.maxLeaseRequests);
      }
      lease.lastAskedAt = now;
      return {
        counter: lease.spec.counter,
        windowStart: lease.windowStart,
        windowEnd: lease.windowEnd,
        limit: lease.spec.limit.toString(),
        need: smallest.toString(),
        want: (total + largest * BigInt(lease.leaseRequests)).toString(),
      };
    });
    let grants: LeaseGrant[] = [];
    try {
      ({ grants } = await this.bus.request(
        quotaLease,
        quotaLease.subject,
        { gatewayId: this.gatewayId, asks },
        { timeoutMs: this.options.timeoutMs },
      ));
    } catch (err) {
      // No grant, no admission: a request is never let through uncounted.
      this.logger.warn({ err }, "quota lease not granted: auth did not answer");
    }
    for (const [lease, waiting] of entries) {
      const grant = grants.find(
        (g) => g.counter === lease.spec.counter && g.windowStart === lease.windowStart,
      );
      if (grant) {
        // Granted for requests that are waiting: not idle, whatever the clock says when the next tick comes.
        lease.lastDrawnAt = Date.now();
        lease.granted += BigInt(grant.granted);
        lease.outstandingAtGrant = BigInt(grant.outstanding);
        lease.returnedAtGrant = lease.returned;
      }
      for (const ask of waiting) ask.resolve(grant ?? "unavailable");
    }
  }

  /** Gives back what idle leases hold, drops ended windows once their requests have settled, and reports. */
  private tick(nowMs = Date.now()): void {
    const nowSeconds = nowMs / 1000;
    for (const [key, lease] of this.leases) {
      if (lease.windowEnd <= nowSeconds) {
        // Nothing can be admitted in an ended window; what it holds is moot.
        if (lease.pending === 0n && lease.report() === null) this.leases.delete(key);
        continue;
      }
      if (nowMs - lease.lastDrawnAt >= this.options.idleReturnMs) lease.giveBackFree();
    }
    this.report();
  }

  /** One report at a time; a failed one is simply repeated by the next, since it carries totals. */
  private report(): void {
    this.reporting = this.reporting.then(async () => {
      const reports: [Lease, LeaseReport][] = [];
      for (const lease of this.leases.values()) {
        const report = lease.report();
        if (report) reports.push([lease, report]);
      }
      for (let from = 0; from < reports.length; from += MAX_LEASES_PER_MESSAGE) {
        const slice = reports.slice(from, from + MAX_LEASES_PER_MESSAGE);
        try {
          await this.bus.request(
            quotaReport,
            quotaReport.subject,
            { gatewayId: this.gatewayId, leases: slice.map(([, report]) => report) },
            { timeoutMs: this.options.timeoutMs },
          );
          for (const [lease, report] of slice) {
            lease.reported = { consumed: BigInt(report.consumed), returned: BigInt(report.returned) };
          }
        } catch (err) {
          this.logger.warn({ err }, "quota report not delivered; the next one carries the same totals");
        }
      }
    });
  }

  /**
   * Gives back everything held and reports it, so a gateway that stops leaves nothing stranded at auth. Waits for
   * that report at most `timeoutMs`: with auth gone too, the leases stay charged until their windows end.
   */
  async close(): Promise<void> {
    clearInterval(this.timer);
    this.recalls.unsubscribe();
    for (const lease of this.leases.values()) lease.giveBackFree();
    this.report();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.reporting,
      new Promise((resolve) => {
        timer = setTimeout(resolve, this.options.timeoutMs);
      }),
    ]);
    clearTimeout(timer);
  }
}

/**
 * The waits before a refill that auth refused is asked again, while other gateways hold part of the window: the first
 * is enough for auth's recall (sent at most 20 ms late) and their returns to arrive on an idle machine, the later ones
 * for a busy one.
 */
const RECALL_WAITS_MS = [50, 100, 200];

function leaseKey(counter: string, windowStart: number): string {
  return `${counter}@${windowStart}`;
}
