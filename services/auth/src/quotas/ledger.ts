import { sql, type Kysely, type Transaction } from "kysely";
import type { LeaseAsk, LeaseGrant, LeaseReport, QuotaWindow } from "@llmaas/contracts";
import type { AuthDatabase } from "@llmaas/db";

/**
 * Of what is left of a limit, a single grant takes at most this share (and never less than its request needs): with
 * plenty left a gateway gets what it asks for, and near the limit leases shrink towards one request each, so a
 * gateway that holds some and goes quiet keeps little from the others.
 */
const LARGEST_SHARE_OF_WHAT_IS_LEFT = 4n;

function inOrder<Item extends QuotaWindow>(items: readonly Item[]): Item[] {
  // One global lock order (counter, window) for every transaction here, so instances never deadlock.
  return [...items].sort((a, b) =>
    a.counter < b.counter ? -1 : a.counter > b.counter ? 1 : a.windowStart - b.windowStart,
  );
}

function bigMax(a: bigint, b: bigint): bigint {
  return a > b ? a : b;
}

function bigMin(a: bigint, b: bigint): bigint {
  return a < b ? a : b;
}

/** How much of `available` one ask gets: nothing if it cannot cover `need`. */
export function grantSize(ask: { need: bigint; want: bigint }, available: bigint): bigint {
  if (ask.need <= 0n || available < ask.need) return 0n;
  const share = bigMax(ask.need, available / LARGEST_SHARE_OF_WHAT_IS_LEFT);
  return bigMin(bigMax(ask.want, ask.need), share);
}

export interface GrantOutcome {
  grants: LeaseGrant[];
  /** Windows where an ask went short while other leases were out: worth recalling. */
  short: QuotaWindow[];
}

/**
 * One transaction for all the asks of a message. The window's row is upserted first, which locks it until the
 * commit: grants of one window, from any auth instance, happen one after the other, each seeing the previous.
 */
export async function grantLeases(
  db: Kysely<AuthDatabase>,
  gatewayId: string,
  asks: readonly LeaseAsk[],
): Promise<GrantOutcome> {
  return db.transaction().execute(async (trx) => {
    const grants: LeaseGrant[] = [];
    const short: QuotaWindow[] = [];
    for (const ask of inOrder(asks)) {
      const window = { counter: ask.counter, windowStart: ask.windowStart };
      const { outstanding } = await trx
        .insertInto("quota_windows")
        .values({
          counter: ask.counter,
          window_start: ask.windowStart,
          window_end: ask.windowEnd,
          limit_amount: ask.limit,
        })
        .onConflict((oc) =>
          oc.columns(["counter", "window_start"]).doUpdateSet({ limit_amount: sql`excluded.limit_amount` }),
        )
        .returning("outstanding")
        .executeTakeFirstOrThrow();
      const before = BigInt(outstanding);
      const granted = grantSize(
        { need: BigInt(ask.need), want: BigInt(ask.want) },
        BigInt(ask.limit) - before,
      );
      if (granted > 0n) await handOut(trx, gatewayId, window, granted);
      else if (before > 0n) short.push(window);
      grants.push({ ...window, granted: granted.toString(), outstanding: (before + granted).toString() });
    }
    return { grants, short };
  });
}

async function handOut(
  trx: Transaction<AuthDatabase>,
  gatewayId: string,
  window: QuotaWindow,
  amount: bigint,
): Promise<void> {
  await trx
    .updateTable("quota_windows")
    .set({ outstanding: sql`outstanding + ${amount.toString()}::numeric` })
    .where("counter", "=", window.counter)
    .where("window_start", "=", window.windowStart)
    .execute();
  await trx
    .insertInto("quota_leases")
    .values({
      counter: window.counter,
      window_start: window.windowStart,
      gateway_id: gatewayId,
      granted: amount.toString(),
    })
    .onConflict((oc) =>
      oc.columns(["counter", "window_start", "gateway_id"]).doUpdateSet({
        granted: sql`quota_leases.granted + excluded.granted`,
        updated_at: sql`now()`,
      }),
    )
    .execute();
}

/**
 * Applies a gateway's totals. What it gave back since its last report that arrived leaves the window's outstanding
 * amount; totals only ever grow, so a repeated or late report is a no-op. A window already swept is ignored.
 */
export async function applyReports(
  db: Kysely<AuthDatabase>,
  gatewayId: string,
  reports: readonly LeaseReport[],
): Promise<void> {
  await db.transaction().execute(async (trx) => {
    for (const report of inOrder(reports)) {
      const window = await trx
        .selectFrom("quota_windows")
        .select("outstanding")
        .where("counter", "=", report.counter)
        .where("window_start", "=", report.windowStart)
        .forUpdate()
        .executeTakeFirst();
      if (!window) continue;
      const lease = await trx
        .selectFrom("quota_leases")
        .select(["granted", "consumed", "returned"])
        .where("counter", "=", report.counter)
        .where("window_start", "=", report.windowStart)
        .where("gateway_id", "=", gatewayId)
        .forUpdate()
        .executeTakeFirst();
      if (!lease) continue;
      const consumed = bigMax(BigInt(lease.consumed), BigInt(report.consumed));
      // What was used stays charged: a report cannot give back more than the lease holds unused.
      const returned = bigMax(
        BigInt(lease.returned),
        bigMin(BigInt(report.returned), BigInt(lease.granted) - consumed),
      );
      const givenBack = returned - BigInt(lease.returned);
      await trx
        .updateTable("quota_leases")
        .set({ consumed: consumed.toString(), returned: returned.toString(), updated_at: sql`now()` })
        .where("counter", "=", report.counter)
        .where("window_start", "=", report.windowStart)
        .where("gateway_id", "=", gatewayId)
        .execute();
      if (givenBack > 0n) {
        await trx
          .updateTable("quota_windows")
          .set({ outstanding: sql`outstanding - ${givenBack.toString()}::numeric` })
          .where("counter", "=", report.counter)
          .where("window_start", "=", report.windowStart)
          .execute();
      }
    }
  });
}

/** Windows that ended more than `keepSeconds` ago, with their leases: nothing will ask for them again. */
export async function sweepEndedWindows(
  db: Kysely<AuthDatabase>,
  nowSeconds: number,
  keepSeconds: number,
): Promise<number> {
  const result = await db
    .deleteFrom("quota_windows")
    .where("window_end", "<", nowSeconds - keepSeconds)
    .executeTakeFirst();
  return Number(result.numDeletedRows);
}
