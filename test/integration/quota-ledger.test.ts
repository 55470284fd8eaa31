// The quota ledger with auth's real lease service (Postgres) and gateways' ledgers on NATS, in one process: however
// many requests two gateways admit at once, the sum of what they admit never passes a limit; what requests did not
// use comes back; auth's outstanding amount is what the gateways hold, and after they close, what was used; a lowered
// limit applies at once; an auth that does not answer refuses nothing silently (503, not 429, not admitted).
import t from "tap";
import { serveQuotaLedger } from "@llmaas/auth/quotas";
import { quotaLease, quotaReport } from "@llmaas/contracts";
import {
  DEFAULT_QUOTA_LEDGER_OPTIONS,
  QuotaLedger,
  QuotaRefused,
  type CounterSpec,
  type Demand,
  type QuotaLedgerOptions,
  type RequestCost,
  type Reservation,
} from "@llmaas/gateway/quotas";
import { connectTestBus, silentLogger } from "../support/bus.js";
import { createTestDatabase } from "../support/database.js";

const database = await createTestDatabase();
t.teardown(() => database.drop());
const authBus = await connectTestBus();
t.teardown(() => authBus.close());
const ledgerService = serveQuotaLedger(authBus.bus, database.db, silentLogger);
t.teardown(() => ledgerService.stop());

const WAIT = { timeoutMs: 2_000 };
const OPTIONS: QuotaLedgerOptions = {
  ...DEFAULT_QUOTA_LEDGER_OPTIONS,
  reportIntervalMs: 200,
  idleReturnMs: 400,
  timeoutMs: 2_000,
};

async function gateway(options: QuotaLedgerOptions = OPTIONS) {
  // The same namespace as auth's, on a connection of its own, as another process would have.
  const { bus } = await connectTestBus(authBus.namespace);
  const ledger = new QuotaLedger(bus, silentLogger, options);
  return {
    ledger,
    close: async () => {
      await ledger.close();
      await bus.drain();
    },
  };
}

let counters = 0;
/** A counter of its own per test, over a month so that no window turns during the test. */
function spec(limit: number, unit: CounterSpec["unit"] = "tokens"): CounterSpec {
  counters++;
  return {
    counter: `test:${counters}:${unit}`,
    interval: "month",
    limit: BigInt(limit),
    kind: "quota",
    header: unit === "requests" ? "requests" : "tokens",
    description: `test counter ${counters}`,
    unit,
  };
}

function cost(tokens: number): RequestCost {
  return { requests: 1n, tokens: BigInt(tokens), pico: 0n, audioBytes: 0n };
}

async function tryAdmit(ledger: QuotaLedger, demands: Demand[], reserved: RequestCost) {
  try {
    return await ledger.admit(demands, reserved);
  } catch (error) {
    if (error instanceof QuotaRefused) return null;
    throw error;
  }
}

async function outstanding(counter: string): Promise<bigint> {
  const rows = await database.db
    .selectFrom("quota_windows")
    .select("outstanding")
    .where("counter", "=", counter)
    .execute();
  return rows.reduce((sum, row) => sum + BigInt(row.outstanding), 0n);
}

async function consumed(counter: string): Promise<bigint> {
  const rows = await database.db
    .selectFrom("quota_leases")
    .select("consumed")
    .where("counter", "=", counter)
    .execute();
  return rows.reduce((sum, row) => sum + BigInt(row.consumed), 0n);
}

const settle = (reservation: Reservation, tokens: number): void => reservation.settle(cost(tokens));

void t.test("200 requests at once on two gateways: never past the limit, and up to it", async (t) => {
  const [a, b] = [await gateway(), await gateway()];
  const requests = spec(80, "requests");
  const tokens = spec(5_000);
  const sizes = Array.from({ length: 200 }, (_, index) => 70 + ((index * 37) % 61));
  const admitted = await Promise.all(
    sizes.map((size, index) =>
      tryAdmit(
        (index % 2 ? a : b).ledger,
        [
          { spec: requests, amount: 1n },
          { spec: tokens, amount: BigInt(size) },
        ],
        cost(size),
      ),
    ),
  );
  const count = admitted.filter((reservation) => reservation !== null).length;
  const reservedTokens = sizes.reduce((sum, size, index) => sum + (admitted[index] ? size : 0), 0);
  t.ok(count <= 80, `${count} admitted, at most the 80 requests allowed`);
  t.ok(reservedTokens <= 5_000, `${reservedTokens} tokens reserved, at most the 5,000 allowed`);
  // 80 requests of 70-130 tokens need more than 5,000 tokens: the tokens run out first, and all but the last
  // request's worth of them is admitted.
  t.ok(reservedTokens > 5_000 - 130, `the limit is used up to the last request (${reservedTokens} of 5,000)`);
  t.ok(
    (await outstanding(tokens.counter)) <= 5_000n,
    "auth never handed out more than the limit, across both gateways",
  );
  for (const reservation of admitted) if (reservation) settle(reservation, 10);
  await Promise.all([a.close(), b.close()]);
  t.equal(
    await outstanding(tokens.counter),
    BigInt(count * 10),
    "once both gateways close, what stays charged is what the requests used",
  );
  t.equal(await consumed(tokens.counter), BigInt(count * 10), "and their reports say the same");
  t.equal(await outstanding(requests.counter), BigInt(count), "every admitted request counts as one request");
});

void t.test("what a request did not use goes back, to its gateway and then to the others", async (t) => {
  const [a, b] = [await gateway(), await gateway()];
  const tokens = spec(100);
  const first = await tryAdmit(a.ledger, [{ spec: tokens, amount: 100n }], cost(100));
  t.ok(first, "the whole limit is reserved by one request");
  t.equal(
    await tryAdmit(b.ledger, [{ spec: tokens, amount: 1n }], cost(1)),
    null,
    "nothing is left for another",
  );
  if (first) settle(first, 40);
  const again = await tryAdmit(a.ledger, [{ spec: tokens, amount: 60n }], cost(60));
  t.ok(again, "the 60 not used are admitted again on the same gateway, from its lease");
  if (again) settle(again, 0);
  // Gateway a holds 60 it does not use: b's ask is refused once, auth recalls, a gives them back, b's retry gets them.
  const other = await tryAdmit(b.ledger, [{ spec: tokens, amount: 60n }], cost(60));
  t.ok(other, "another gateway gets them once the first gives them back");
  t.equal(await tryAdmit(b.ledger, [{ spec: tokens, amount: 1n }], cost(1)), null, "and not one token more");
  if (other) settle(other, 60);
  await Promise.all([a.close(), b.close()]);
  t.equal(await outstanding(tokens.counter), 100n, "40 + 60 used: the limit, exactly");
});

void t.test("a lowered limit applies to what a gateway already holds", async (t) => {
  const a = await gateway();
  const high = spec(1_000);
  const first = await tryAdmit(a.ledger, [{ spec: high, amount: 10n }], cost(10));
  t.ok(first);
  if (first) settle(first, 10);
  const lowered: CounterSpec = { ...high, limit: 15n };
  const second = await tryAdmit(a.ledger, [{ spec: lowered, amount: 5n }], cost(5));
  t.ok(second, "5 more fit under the new limit of 15");
  t.equal(await tryAdmit(a.ledger, [{ spec: lowered, amount: 1n }], cost(1)), null, "one more does not");
  if (second) settle(second, 5);
  await a.close();
  t.equal(await outstanding(high.counter), 15n);
});

void t.test("a report repeated or late changes nothing", async (t) => {
  const a = await gateway();
  const tokens = spec(100);
  const reservation = await tryAdmit(a.ledger, [{ spec: tokens, amount: 30n }], cost(30));
  if (reservation) settle(reservation, 30);
  await a.close();
  const { bus } = authBus;
  const before = await outstanding(tokens.counter);
  const lease = await database.db
    .selectFrom("quota_leases")
    .select(["window_start", "gateway_id", "consumed", "returned"])
    .where("counter", "=", tokens.counter)
    .executeTakeFirstOrThrow();
  const report = {
    counter: tokens.counter,
    windowStart: Number(lease.window_start),
    consumed: "0",
    returned: "0",
  };
  await bus.request(
    quotaReport,
    quotaReport.subject,
    { gatewayId: lease.gateway_id, leases: [report] },
    WAIT,
  );
  t.equal(await outstanding(tokens.counter), before, "an older report (smaller totals) is ignored");
  const repeated = { ...report, consumed: lease.consumed, returned: lease.returned };
  await bus.request(
    quotaReport,
    quotaReport.subject,
    { gatewayId: lease.gateway_id, leases: [repeated] },
    WAIT,
  );
  await bus.request(
    quotaReport,
    quotaReport.subject,
    { gatewayId: lease.gateway_id, leases: [repeated] },
    WAIT,
  );
  t.equal(await outstanding(tokens.counter), before, "the same totals twice change nothing");
  const inflated = { ...report, consumed: lease.consumed, returned: "1000000" };
  await bus.request(
    quotaReport,
    quotaReport.subject,
    { gatewayId: lease.gateway_id, leases: [inflated] },
    WAIT,
  );
  t.equal(await outstanding(tokens.counter), 30n, "a gateway cannot give back more than it was granted");
});

void t.test("auth does not answer: a 503, and nothing admitted", async (t) => {
  const lonely = await gateway({ ...OPTIONS, timeoutMs: 200 });
  // A namespace where no auth serves: the ask times out.
  const { bus, close } = await connectTestBus();
  const orphan = new QuotaLedger(bus, silentLogger, { ...OPTIONS, timeoutMs: 200 });
  await t.rejects(
    orphan.admit([{ spec: spec(10), amount: 1n }], cost(1)),
    { code: "service_unavailable" },
    "refused as unavailable, not admitted uncounted",
  );
  await orphan.close();
  await close();
  await lonely.close();
});

void t.test("a busy gateway asks rarely: one message per shortfall, leases that grow", async (t) => {
  const a = await gateway();
  const asks: number[] = [];
  const watch = authBus.bus.nc.subscribe(authBus.bus.subject(quotaLease.subject), {
    callback: (_error, message) => {
      asks.push(message.json<{ asks: unknown[] }>().asks.length);
    },
  });
  // The subscription must be at the server before the first ask is sent.
  await authBus.bus.nc.flush();
  const requests = spec(1_000_000, "requests");
  const tokens = spec(100_000_000);
  for (let index = 0; index < 500; index++) {
    const reservation = await tryAdmit(
      a.ledger,
      [
        { spec: requests, amount: 1n },
        { spec: tokens, amount: 300n },
      ],
      cost(300),
    );
    if (!reservation) throw new Error("refused under a limit far away");
    settle(reservation, 100);
  }
  watch.unsubscribe();
  await a.close();
  t.ok(asks.length <= 12, `500 requests, ${asks.length} lease messages`);
  t.equal(asks[0], 2, "the first request's two counters are asked for in one message, not one each");
});
