// The usage export's pages: keyset paging that neither skips nor repeats an event (ties on finished_at included, to
// the microsecond), the caller's organization only, [start, end) by finished_at, and replies kept small enough for
// one NATS message whatever the events hold.
import t from "tap";
import {
  MAX_USAGE_EXPORT_REPLY_BYTES,
  MAX_USAGE_EXPORT_ROWS,
  USAGE_EXPORT_FIELDS,
  usageExportPage,
  UsageExportPage,
  type AdminPrincipal,
  type UsageExportCursor,
  type UsageExportField,
  type UsageExportRow,
} from "@llmaas/contracts";
import type { UsageEventsTable } from "@llmaas/db";
import type { Insertable } from "kysely";
import { readUsageExportPage } from "../src/export/page.js";
import { serveUsageExport } from "../src/export/serve.js";
import { createTestDatabase } from "../../../test/support/database.js";
import { connectTestBus } from "../../../test/support/bus.js";

const database = await createTestDatabase();
t.teardown(() => database.drop());
const { db } = database;
const testBus = await connectTestBus();
t.teardown(() => testBus.close());
const { bus } = testBus;
const subscriptions = serveUsageExport(bus, db);
t.teardown(() => subscriptions.forEach((subscription) => subscription.unsubscribe()));

function principal(organizationId: string): AdminPrincipal {
  return {
    kind: "admin_key",
    organizationId,
    role: "reader",
    id: `key_admin_${organizationId}`,
    actor: { type: "api_key", api_key: { id: "key_admin", type: "user", ip_address: "127.0.0.1" } },
  };
}

const T0 = Date.parse("2026-11-21T10:00:00.000Z");
const seconds = (ms: number) => Math.floor(ms / 1000);

function event(
  organizationId: string,
  requestId: string,
  finishedAt: string,
  overrides: Partial<Insertable<UsageEventsTable>> = {},
): Insertable<UsageEventsTable> {
  return {
    request_id: requestId,
    organization_id: organizationId,
    project_id: `proj_${organizationId}`,
    key_id: `key_${organizationId}`,
    end_user: null,
    model: "tiny-chat",
    operation: "chat.completions",
    prompt_tokens: 10,
    completion_tokens: 5,
    audio_seconds: 0,
    status: "completed",
    served_by: "worker-1",
    started_at: new Date(Date.parse(finishedAt) - 1000).toISOString(),
    finished_at: finishedAt,
    currency: "EUR",
    input_price_pico: 500_000,
    output_price_pico: 1_500_000,
    audio_price_pico: 0,
    input_cost_pico: 5_000_000,
    output_cost_pico: 7_500_000,
    audio_cost_pico: 0,
    ...overrides,
  };
}

type UsageExportEvent = Record<UsageExportField, string | number | null> & {
  id: string;
  organization_id: string;
  project_id: string;
  finished_at: string;
};

/** An event as the export writes it: its values under their field names. */
function named(row: UsageExportRow): UsageExportEvent {
  return Object.fromEntries(
    USAGE_EXPORT_FIELDS.map((field, index) => [field, row[index]]),
  ) as UsageExportEvent;
}

/** Every page of an export through the bus, as the gateway asks for them. */
async function exportAll(
  organizationId: string,
  startTime: number,
  endTime: number,
  limit: number,
): Promise<{ events: UsageExportEvent[]; pages: UsageExportPage[] }> {
  const pages: UsageExportPage[] = [];
  let after: UsageExportCursor | null = null;
  for (;;) {
    const page: UsageExportPage = await bus.request(
      usageExportPage,
      usageExportPage.subject,
      { principal: principal(organizationId), startTime, endTime, after, limit },
      { timeoutMs: 10_000 },
    );
    pages.push(page);
    if (!page.next) break;
    after = page.next;
    if (pages.length > 10_000) throw new Error("the export does not end");
  }
  return { events: pages.flatMap((page) => page.events.map(named)), pages };
}

// org_paging: 23 events in groups sharing one finished_at (ties broken by request id, inserted out of order), two
// of them a microsecond apart; org_other: events interleaved in the same period.
const pagingRows: Insertable<UsageEventsTable>[] = [];
for (let index = 0; index < 23; index++) {
  const finishedAt = new Date(T0 + Math.floor(index / 5) * 1000).toISOString();
  // Request ids in an order unrelated to insertion order.
  const requestId = `req-${String((index * 7) % 23).padStart(3, "0")}`;
  pagingRows.push(event("org_paging", requestId, finishedAt, { prompt_tokens: index }));
}
pagingRows.push(event("org_paging", "req-us-2", "2026-11-21T10:00:10.000002Z"));
pagingRows.push(event("org_paging", "req-us-1", "2026-11-21T10:00:10.000001Z"));
pagingRows.push(event("org_paging", "req-us-0", "2026-11-21T10:00:10.000001Z"));
// Outside the period [T0, T0 + 11 s): one just before, one exactly at the end (excluded).
pagingRows.push(event("org_paging", "req-before", new Date(T0 - 1).toISOString()));
pagingRows.push(event("org_paging", "req-at-end", new Date(T0 + 11_000).toISOString()));
for (let index = 0; index < 10; index++) {
  pagingRows.push(event("org_other", `other-${index}`, new Date(T0 + index * 500).toISOString()));
}
await db.insertInto("usage_events").values(pagingRows.reverse()).execute();

const sortKey = (finishedAt: string, requestId: string) => `${finishedAt}\u0000${requestId}`;

void t.test("pages neither skip nor repeat events, ties on finished_at included", async (t) => {
  const expected = await db
    .selectFrom("usage_events")
    .select("request_id")
    .where("organization_id", "=", "org_paging")
    .where("finished_at", ">=", new Date(T0))
    .where("finished_at", "<", new Date(T0 + 11_000))
    .orderBy("finished_at")
    .orderBy("request_id")
    .execute();
  t.equal(expected.length, 26, "the period holds 26 of the organization's events");
  for (const limit of [1, 2, 3, 5, 7, 13, 26, 1000]) {
    const { events, pages } = await exportAll("org_paging", seconds(T0), seconds(T0) + 11, limit);
    t.same(
      events.map((e) => e.id),
      expected.map((row) => row.request_id),
      `limit ${limit}: every event once, in (finished_at, id) order`,
    );
    t.equal(pages.length, Math.ceil(26 / limit), `limit ${limit}: no empty last page`);
    t.ok(
      pages.every((page) => page.events.length <= limit),
      `limit ${limit}: no page above the limit`,
    );
    for (let index = 1; index < events.length; index++) {
      const previous = events[index - 1] as UsageExportEvent;
      const current = events[index] as UsageExportEvent;
      if (sortKey(previous.finished_at, previous.id) >= sortKey(current.finished_at, current.id)) {
        t.fail(`limit ${limit}: out of order at ${index}`);
      }
    }
  }
  const { events } = await exportAll("org_paging", seconds(T0), seconds(T0) + 11, 2);
  t.same(
    events.filter((e) => e.id.startsWith("req-us-")).map((e) => [e.id, e.finished_at]),
    [
      ["req-us-0", "2026-11-21T10:00:10.000001Z"],
      ["req-us-1", "2026-11-21T10:00:10.000001Z"],
      ["req-us-2", "2026-11-21T10:00:10.000002Z"],
    ],
    "timestamps are exact to the microsecond, and so is the cursor",
  );
});

void t.test("start is inclusive, end exclusive", async (t) => {
  const { events } = await exportAll("org_paging", seconds(T0), seconds(T0) + 1, 100);
  t.same(
    events.map((e) => e.finished_at),
    Array.from({ length: 5 }, () => "2026-11-21T10:00:00.000000Z"),
    "exactly the events that finished in the first second",
  );
  const none = await exportAll("org_paging", seconds(T0) + 100, seconds(T0) + 200, 100);
  t.same(none.pages, [{ events: [], next: null }], "an empty period is one empty page");
});

void t.test("an organization exports its own events only", async (t) => {
  const { events } = await exportAll("org_other", 0, seconds(T0) + 86_400, 3);
  t.same(
    events.map((e) => e.id),
    Array.from({ length: 10 }, (_, index) => `other-${index}`),
  );
  t.ok(events.every((e) => e.organization_id === "org_other" && e.project_id === "proj_org_other"));
  const paging = await exportAll("org_paging", 0, seconds(T0) + 86_400, 1000);
  t.equal(paging.events.length, 28, "all of org_paging's events, none of org_other's");
  t.notOk(
    paging.events.some((e) => e.organization_id !== "org_paging"),
    "no other organization's event",
  );
  const nobody = await exportAll("org_nobody", 0, seconds(T0) + 86_400, 1000);
  t.same(nobody.events, [], "an organization without usage exports nothing");
});

void t.test("an event is exported field by field, amounts exact", async (t) => {
  const big = 9_000_000_000_000_000_000n; // above 2^63 / 2 and far above 2^53
  await db
    .insertInto("usage_events")
    .values([
      event("org_fields", "req-fields-1", "2026-11-21T12:00:00.123Z", {
        end_user: 'user, "quoted"\nnext line',
        operation: "audio.transcriptions",
        status: "cancelled",
        prompt_tokens: 0,
        completion_tokens: 0,
        audio_seconds: 61,
        audio_price_pico: 6_000_000_000n,
        audio_cost_pico: 6_100_000_000n,
        input_cost_pico: big,
        output_cost_pico: 1,
        input_price_pico: 0,
        output_price_pico: 0,
      }),
      event("org_fields", "req-fields-2", "2026-11-21T12:00:01Z", {
        currency: null,
        input_price_pico: 0,
        output_price_pico: 0,
        input_cost_pico: 0,
        output_cost_pico: 0,
      }),
    ])
    .execute();
  const { events } = await exportAll(
    "org_fields",
    seconds(Date.parse("2026-11-21T12:00:00Z")),
    2_000_000_000,
    10,
  );
  t.same(events, [
    {
      id: "req-fields-1",
      organization_id: "org_fields",
      project_id: "proj_org_fields",
      api_key_id: "key_org_fields",
      model: "tiny-chat",
      user: 'user, "quoted"\nnext line',
      operation: "audio.transcriptions",
      status: "cancelled",
      input_tokens: 0,
      output_tokens: 0,
      audio_seconds: 61,
      started_at: "2026-11-21T11:59:59.123000Z",
      finished_at: "2026-11-21T12:00:00.123000Z",
      served_by: "worker-1",
      currency: "EUR",
      input_price_pico_per_token: "0",
      output_price_pico_per_token: "0",
      audio_price_pico_per_minute: "6000000000",
      input_cost_pico: "9000000000000000000",
      output_cost_pico: "1",
      audio_cost_pico: "6100000000",
      cost: "9000000.006100000001",
      screened_inputs: 0,
    },
    {
      id: "req-fields-2",
      organization_id: "org_fields",
      project_id: "proj_org_fields",
      api_key_id: "key_org_fields",
      model: "tiny-chat",
      user: null,
      operation: "chat.completions",
      status: "completed",
      input_tokens: 10,
      output_tokens: 5,
      audio_seconds: 0,
      started_at: "2026-11-21T12:00:00.000000Z",
      finished_at: "2026-11-21T12:00:01.000000Z",
      served_by: "worker-1",
      currency: null,
      input_price_pico_per_token: "0",
      output_price_pico_per_token: "0",
      audio_price_pico_per_minute: "0",
      input_cost_pico: "0",
      output_cost_pico: "0",
      audio_cost_pico: "0",
      cost: "0.000000000000",
      screened_inputs: 0,
    },
  ]);
});

void t.test("replies stay far below NATS's 1 MB, whatever the events hold", async (t) => {
  // Events with long ids and end users: 1000 of them would be about 1.5 MB of JSON.
  const long = "x".repeat(900);
  const rows = Array.from({ length: 1_200 }, (_, index) =>
    event(
      "org_bytes",
      `req-${String(index).padStart(5, "0")}-${"y".repeat(100)}`,
      new Date(T0).toISOString(),
      {
        end_user: `${long}-${index}`,
      },
    ),
  );
  for (let start = 0; start < rows.length; start += 300) {
    await db
      .insertInto("usage_events")
      .values(rows.slice(start, start + 300))
      .execute();
  }
  const { events, pages } = await exportAll("org_bytes", seconds(T0), seconds(T0) + 1, MAX_USAGE_EXPORT_ROWS);
  t.equal(events.length, 1_200, "every event");
  t.equal(new Set(events.map((e) => e.id)).size, 1_200, "each once");
  t.ok(pages.length >= 3, `split by bytes, not rows: ${pages.length} pages`);
  for (const page of pages) {
    const bytes = Buffer.byteLength(JSON.stringify({ ok: true, data: page }));
    if (bytes > MAX_USAGE_EXPORT_REPLY_BYTES + 1024) t.fail(`a reply of ${bytes} bytes`);
  }
  t.ok(
    pages.slice(0, -1).every((page) => page.events.length < MAX_USAGE_EXPORT_ROWS && page.next !== null),
    "each full page says where to go on",
  );

  // A cap smaller than one event still sends that event, so an export always moves forward.
  const request = {
    principal: principal("org_bytes"),
    startTime: seconds(T0),
    endTime: seconds(T0) + 1,
    after: null,
    limit: 10,
  };
  const tiny = await readUsageExportPage(db, request, { maxBytes: 10 });
  t.equal(tiny.events.length, 1, "one event above the cap");
  const first = named(tiny.events[0] as UsageExportRow);
  t.same(tiny.next, { finishedAt: first.finished_at, requestId: first.id });
  // Postgres counts its JSON with a space after each of the 21 commas, and a comma between events.
  const counted = Buffer.byteLength(JSON.stringify(tiny.events[0])) + 22;
  const two = await readUsageExportPage(db, request, { maxBytes: counted * 2 + 10 });
  t.equal(two.events.length, 2, "as many events as fit");
  t.ok(UsageExportPage.safeParse(two).success, "a page matches its contract");
});

void t.test("a page request without a principal is refused", async (t) => {
  // Past the bus's own checks on the way out: raw bytes, as anything on the network could send them.
  const reply = await bus.nc.request(
    bus.subject(usageExportPage.subject),
    new TextEncoder().encode(
      JSON.stringify({ startTime: 0, endTime: 2_000_000_000, after: null, limit: 10 }),
    ),
    { timeout: 5_000 },
  );
  const envelope = JSON.parse(new TextDecoder().decode(reply.data)) as {
    ok: boolean;
    error?: { code: string };
  };
  t.equal(envelope.ok, false);
  t.equal(envelope.error?.code, "invalid_request");
});
