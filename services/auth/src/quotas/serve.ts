import type { Kysely } from "kysely";
import type { Bus } from "@llmaas/bus";
import { quotaLease, quotaRecall, quotaReport, type QuotaWindow } from "@llmaas/contracts";
import type { AuthDatabase } from "@llmaas/db";
import type { Logger } from "@llmaas/telemetry";
import { serveInQueue } from "../admin/serve.js";
import { applyReports, grantLeases, sweepEndedWindows } from "./ledger.js";

/**
 * A window is recalled at most this often by one instance: one recall frees all that can be freed. A recall asked
 * for sooner is sent when the interval is over, never dropped: the ask that needed it is waiting to try again.
 */
const RECALL_INTERVAL_MS = 20;
const SWEEP_INTERVAL_MS = 60_000;
/** Ended windows are kept a while for whoever looks into a dispute, then deleted. */
const KEEP_ENDED_WINDOWS_SECONDS = 24 * 60 * 60;

export interface QuotaLedgerService {
  stop(): void;
}

/** The quota ledger on the bus: lease grants and gateways' reports, both in the auth queue group. */
export function serveQuotaLedger(bus: Bus, db: Kysely<AuthDatabase>, logger: Logger): QuotaLedgerService {
  const lastRecall = new Map<string, number>();
  const trailing = new Set<string>();
  const recall = (window: QuotaWindow): void => {
    const key = `${window.counter}@${window.windowStart}`;
    if (trailing.has(key)) return;
    const wait = (lastRecall.get(key) ?? 0) + RECALL_INTERVAL_MS - Date.now();
    const send = (): void => {
      trailing.delete(key);
      lastRecall.set(key, Date.now());
      bus.publish(quotaRecall, quotaRecall.subject, window);
    };
    if (wait <= 0) return send();
    trailing.add(key);
    setTimeout(send, wait).unref();
  };

  serveInQueue(bus, quotaLease, async ({ gatewayId, asks }) => {
    const { grants, short } = await grantLeases(db, gatewayId, asks);
    short.forEach(recall);
    return { grants };
  });
  serveInQueue(bus, quotaReport, async ({ gatewayId, leases }) => {
    await applyReports(db, gatewayId, leases);
    return {};
  });

  const sweep = setInterval(() => {
    lastRecall.clear();
    sweepEndedWindows(db, Math.floor(Date.now() / 1000), KEEP_ENDED_WINDOWS_SECONDS).catch((err: unknown) =>
      logger.warn({ err }, "ended quota windows not swept"),
    );
  }, SWEEP_INTERVAL_MS);
  sweep.unref();
  return { stop: () => clearInterval(sweep) };
}
