import type { Bus } from "@llmaas/bus";
import type { Logger } from "@llmaas/telemetry";
import { DEFAULT_QUOTA_LEDGER_OPTIONS, QuotaLedger, type QuotaLedgerOptions } from "./ledger.js";
import { DEFAULT_USAGE_SETTLER_OPTIONS, UsageSettler, type UsageSettlerOptions } from "./settlement.js";

export {
  addCosts,
  admit,
  admitIfEnforced,
  embeddingCost,
  generationCost,
  inputTokenBound,
  transcriptionCost,
  type Admission,
} from "./admission.js";

/** Quota enforcement on one gateway: its leases, and the settling of requests that ended without usage in band. */
export class Quotas {
  readonly ledger: QuotaLedger;
  readonly settler: UsageSettler;

  constructor(
    bus: Bus,
    readonly logger: Logger,
    options: { ledger?: Partial<QuotaLedgerOptions>; settler?: Partial<UsageSettlerOptions> } = {},
  ) {
    this.ledger = new QuotaLedger(bus, logger, { ...DEFAULT_QUOTA_LEDGER_OPTIONS, ...options.ledger });
    this.settler = new UsageSettler(bus, logger, { ...DEFAULT_USAGE_SETTLER_OPTIONS, ...options.settler });
  }

  /** After the last request: what the leases hold and no request needs goes back to auth. */
  async close(): Promise<void> {
    this.settler.close();
    await this.ledger.close();
  }
}
export {
  DEFAULT_QUOTA_LEDGER_OPTIONS,
  QuotaLedger,
  QuotaRefused,
  Reservation,
  type QuotaLedgerOptions,
} from "./ledger.js";
export { UsageSettler, type SettlementPart } from "./settlement.js";
export type { CounterSpec, Demand, RequestCost } from "./counters.js";
