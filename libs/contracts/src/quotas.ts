import { z } from "zod";
import { eventSubject, requestSubject } from "./definitions.js";

/**
 * Quota leases (docs/quotas.md). `auth` keeps, per counter and window, how much of the limit it has handed out;
 * gateways lease parts of it and admit requests from their leases in memory, so a request costs no round trip while
 * its gateway's lease lasts, and the sum of all leases never exceeds the limit, however many gateways run.
 *
 * A counter is a string naming what is counted and for whom (`key:<id>:rpm`, `project:<id>:model:<m>:tpm`,
 * `organization:<id>:spend`, …); a window is its period, in unix seconds. Amounts are non-negative integers as
 * decimal strings: money is counted in pico-units of the currency, beyond 2^53.
 */

export const Amount = z.string().regex(/^(0|[1-9]\d{0,30})$/, "a non-negative integer, in decimal");
export type Amount = z.infer<typeof Amount>;

const Counter = z.string().min(1).max(300);
const UnixSeconds = z.number().int().nonnegative();

export const QuotaWindow = z.object({
  counter: Counter,
  windowStart: UnixSeconds,
});
export type QuotaWindow = z.infer<typeof QuotaWindow>;

/** A gateway process, named anew at each start: its leases die with it (docs/quotas.md says what that costs). */
const GatewayId = z.string().min(1).max(128);

export const LeaseAsk = QuotaWindow.extend({
  windowEnd: UnixSeconds,
  /** The limit as the gateway's principal states it; `auth` applies the latest one it was given. */
  limit: Amount,
  /** Less than this is no use: the request that asks cannot be admitted with it. */
  need: Amount,
  /** What the gateway would like to hold, for the requests it expects next. */
  want: Amount,
});
export type LeaseAsk = z.infer<typeof LeaseAsk>;

export const LeaseGrant = QuotaWindow.extend({
  /** 0 when what is left of the limit is less than `need`. */
  granted: Amount,
  /** Everything handed out for this window after this grant, to every gateway: the basis of the remaining headers. */
  outstanding: Amount,
});
export type LeaseGrant = z.infer<typeof LeaseGrant>;

export const MAX_LEASES_PER_MESSAGE = 64;

/** Served by every `auth` instance in one queue group; one transaction per message. */
export const quotaLease = requestSubject(
  "quota.v1.lease",
  z.object({ gatewayId: GatewayId, asks: z.array(LeaseAsk).min(1).max(MAX_LEASES_PER_MESSAGE) }),
  z.object({ grants: z.array(LeaseGrant) }),
);

/**
 * How a lease stands, as totals since it was first granted: what the gateway's requests consumed and what it gave
 * back. Totals rather than changes, so a report that is repeated or overtaken changes nothing.
 */
export const LeaseReport = QuotaWindow.extend({ consumed: Amount, returned: Amount });
export type LeaseReport = z.infer<typeof LeaseReport>;

export const quotaReport = requestSubject(
  "quota.v1.report",
  z.object({ gatewayId: GatewayId, leases: z.array(LeaseReport).min(1).max(MAX_LEASES_PER_MESSAGE) }),
  z.object({}),
);

/**
 * Broadcast by `auth` when it could not grant what a request needed while leases of that window are out: every
 * gateway gives back what it holds of it and does not need, so the next ask finds it.
 */
export const quotaRecall = eventSubject("quota.v1.recall", QuotaWindow);
