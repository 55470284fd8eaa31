// The Usage and Costs API's rows, read by metering from the aggregate tables: grouping, filters, which table serves
// which part of a range, continuations that keep every reply far below NATS's message limit, and organizations that
// never see each other's usage.
import t from "tap";
import { sql } from "kysely";
import {
  MAX_USAGE_REPLY_BYTES,
  PlatformError,
  usageApiSubjects,
  type AdminPrincipal,
  type UsageOperation,
  type UsageRow,
  type UsageRowsQuery,
} from "@llmaas/contracts";
import { queryUsageRows, segmentsOf } from "../src/usage-api/query.js";
import { serveUsageApi } from "../src/usage-api/serve.js";
import { createTestDatabase } from "../../../test/support/database.js";
import { connectTestBus } from "../../../test/support/bus.js";

const database = await createTestDatabase();
t.teardown(() => database.drop());
const { db } = database;

const DAY = 86_400;
const HOUR = 3_600;
/** 2026-11-21T00:00:00Z */
const D0 = Date.UTC(2026, 10, 21) / 1000;

interface Usage {
  /** Unix seconds at which the requests ended. */
  at: number;
  organizationId?: string;
  projectId?: string;
  keyId?: string;
  model?: string;
  endUser?: string | null;
  operation?: UsageOperation;
  requests?: number;
  inputTokens?: number;
  outputTokens?: number;
  audioSeconds?: number;
  inputCostPico?: string;
  outputCostPico?: string;
  audioCostPico?: string;
}

const TABLES = [
  ["usage_minute", 60],
  ["usage_hourly", HOUR],
  ["usage_daily", DAY],
] as const;

const SUMMED = [
  "requests",
  "input_tokens",
  "output_tokens",
  "audio_seconds",
  "input_cost_pico",
  "output_cost_pico",
  "audio_cost_pico",
] as const;

/** Folds usage into the three aggregate tables, as metering's ingest does. */
async function record(usages: Usage[], tables: readonly (typeof TABLES)[number][] = TABLES): Promise<void> {
  for (const [table, unit] of tables) {
    for (let index = 0; index < usages.length; index += 1000) {
      const rows = usages.slice(index, index + 1000).map((usage) => ({
        organization_id: usage.organizationId ?? "org_a",
        bucket_start: new Date(Math.floor(usage.at / unit) * unit * 1000),
        project_id: usage.projectId ?? "proj_1",
        key_id: usage.keyId ?? "key_1",
        model: usage.model ?? "tiny-chat",
        end_user: usage.endUser ?? "",
        operation: usage.operation ?? "chat.completions",
        requests: String(usage.requests ?? 1),
        input_tokens: String(usage.inputTokens ?? 10),
        output_tokens: String(usage.outputTokens ?? 5),
        audio_seconds: String(usage.audioSeconds ?? 0),
        input_cost_pico: usage.inputCostPico ?? "5000000",
        output_cost_pico: usage.outputCostPico ?? "7500000",
        audio_cost_pico: usage.audioCostPico ?? "0",
      }));
      // One insert may not touch a row twice: usage of the same bucket and key is summed first.
      const merged = new Map<string, (typeof rows)[number]>();
      for (const row of rows) {
        const key = JSON.stringify([
          row.bucket_start,
          row.project_id,
          row.key_id,
          row.model,
          row.end_user,
          row.operation,
        ]);
        const seen = merged.get(`${row.organization_id}/${key}`);
        if (!seen) merged.set(`${row.organization_id}/${key}`, row);
        else for (const column of SUMMED) seen[column] = String(BigInt(seen[column]) + BigInt(row[column]));
      }
      const values = [...merged.values()];
      await db
        .insertInto(table)
        .values(values)
        .onConflict((oc) =>
          oc
            .columns([
              "organization_id",
              "bucket_start",
              "project_id",
              "key_id",
              "model",
              "end_user",
              "operation",
            ])
            .doUpdateSet({
              requests: sql`${sql.ref(`${table}.requests`)} + excluded.requests`,
              input_tokens: sql`${sql.ref(`${table}.input_tokens`)} + excluded.input_tokens`,
              output_tokens: sql`${sql.ref(`${table}.output_tokens`)} + excluded.output_tokens`,
              audio_seconds: sql`${sql.ref(`${table}.audio_seconds`)} + excluded.audio_seconds`,
              input_cost_pico: sql`${sql.ref(`${table}.input_cost_pico`)} + excluded.input_cost_pico`,
              output_cost_pico: sql`${sql.ref(`${table}.output_cost_pico`)} + excluded.output_cost_pico`,
              audio_cost_pico: sql`${sql.ref(`${table}.audio_cost_pico`)} + excluded.audio_cost_pico`,
            }),
        )
        .execute();
    }
  }
}

function rowsQuery(overrides: Partial<UsageRowsQuery> = {}): UsageRowsQuery {
  return {
    operations: ["chat.completions", "completions"],
    startTime: D0,
    endTime: D0 + 3 * DAY,
    bucketSeconds: DAY,
    groupBy: [],
    projectIds: [],
    apiKeyIds: [],
    models: [],
    userIds: [],
    after: null,
    ...overrides,
  };
}

/** Every row, following continuations. */
async function allRows(
  organizationId: string,
  query: UsageRowsQuery,
  limits: { maxRows?: number; maxBytes?: number } = {},
): Promise<{ rows: UsageRow[]; replies: number }> {
  const rows: UsageRow[] = [];
  let after = query.after;
  for (let replies = 1; ; replies += 1) {
    const reply = await queryUsageRows(db, organizationId, { ...query, after }, limits);
    rows.push(...reply.rows);
    if (!reply.next) return { rows, replies };
    after = reply.next;
  }
}

const brief = (row: UsageRow) => ({
  bucket: row.bucket,
  projectId: row.projectId,
  apiKeyId: row.apiKeyId,
  model: row.model,
  userId: row.userId,
  requests: row.requests,
  inputTokens: row.inputTokens,
  outputTokens: row.outputTokens,
});

// ---- a small data set for org_a, over three days
await record([
  { at: D0 + 10 * HOUR + 5, endUser: "alice" },
  { at: D0 + 10 * HOUR + 65, endUser: "alice", keyId: "key_2", inputTokens: 20, outputTokens: 1 },
  { at: D0 + 23 * HOUR + 59 * 60 + 59, projectId: "proj_2", keyId: "key_3", operation: "completions" },
  { at: D0 + DAY + 30, model: "tiny-chat-2", endUser: "bob", inputTokens: 7, outputTokens: 3 },
  { at: D0 + DAY + 31, operation: "embeddings", model: "tiny-embed", inputTokens: 100, outputTokens: 0 },
  {
    at: D0 + 2 * DAY + 12 * HOUR,
    operation: "audio.transcriptions",
    model: "tiny-whisper",
    inputTokens: 0,
    outputTokens: 0,
    audioSeconds: 42,
    inputCostPico: "0",
    outputCostPico: "0",
    audioCostPico: "4200000000",
  },
  // Another organization, in the same buckets.
  { at: D0 + 10 * HOUR, organizationId: "org_b", endUser: "alice", inputTokens: 1000 },
  { at: D0 + DAY, organizationId: "org_b", operation: "audio.transcriptions", audioSeconds: 9 },
]);

void t.test("segments: the coarsest table that fits each part of the range", async (t) => {
  t.same(segmentsOf(D0, D0 + 2 * DAY, DAY), [{ table: "usage_daily", start: D0, end: D0 + 2 * DAY }]);
  t.same(segmentsOf(D0 + 10 * HOUR + 90, D0 + DAY + HOUR + 30, DAY), [
    { table: "usage_minute", start: D0 + 10 * HOUR + 90, end: D0 + 11 * HOUR },
    { table: "usage_hourly", start: D0 + 11 * HOUR, end: D0 + DAY + HOUR },
    { table: "usage_minute", start: D0 + DAY + HOUR, end: D0 + DAY + HOUR + 30 },
  ]);
  t.same(
    segmentsOf(D0, D0 + 2 * DAY, HOUR),
    [{ table: "usage_hourly", start: D0, end: D0 + 2 * DAY }],
    "no day table for hourly buckets",
  );
  t.same(segmentsOf(D0 + 10 * HOUR + 90, D0 + 2 * DAY + HOUR + 30, DAY), [
    { table: "usage_minute", start: D0 + 10 * HOUR + 90, end: D0 + 11 * HOUR },
    { table: "usage_hourly", start: D0 + 11 * HOUR, end: D0 + DAY },
    { table: "usage_daily", start: D0 + DAY, end: D0 + 2 * DAY },
    { table: "usage_hourly", start: D0 + 2 * DAY, end: D0 + 2 * DAY + HOUR },
    { table: "usage_minute", start: D0 + 2 * DAY + HOUR, end: D0 + 2 * DAY + HOUR + 30 },
  ]);
  t.same(segmentsOf(D0, D0 + 2 * DAY, 60), [{ table: "usage_minute", start: D0, end: D0 + 2 * DAY }]);
  t.same(segmentsOf(D0 + 10, D0 + 50, DAY), [{ table: "usage_minute", start: D0 + 10, end: D0 + 50 }]);
});

void t.test(
  "ungrouped: one row per bucket that has usage, summed over the operations asked for",
  async (t) => {
    const { rows } = await allRows("org_a", rowsQuery());
    t.same(rows.map(brief), [
      {
        bucket: D0,
        projectId: null,
        apiKeyId: null,
        model: null,
        userId: null,
        requests: "3",
        inputTokens: "40",
        outputTokens: "11",
      },
      {
        bucket: D0 + DAY,
        projectId: null,
        apiKeyId: null,
        model: null,
        userId: null,
        requests: "1",
        inputTokens: "7",
        outputTokens: "3",
      },
    ]);
    t.equal(rows[0]?.inputCostPico, "15000000");
    t.equal(rows[0]?.outputCostPico, "22500000");

    const embeddings = await allRows("org_a", rowsQuery({ operations: ["embeddings"] }));
    t.same(
      embeddings.rows.map((row) => [row.bucket, row.requests, row.inputTokens]),
      [[D0 + DAY, "1", "100"]],
    );
    const audio = await allRows("org_a", rowsQuery({ operations: ["audio.transcriptions"] }));
    t.same(
      audio.rows.map((row) => [row.bucket, row.requests, row.audioSeconds, row.audioCostPico]),
      [[D0 + 2 * DAY, "1", "42", "4200000000"]],
    );
  },
);

void t.test("grouped by every dimension; no end user is a null user_id", async (t) => {
  const { rows } = await allRows(
    "org_a",
    rowsQuery({ groupBy: ["user_id", "model", "api_key_id", "project_id"], bucketSeconds: HOUR }),
  );
  t.same(rows.map(brief), [
    {
      bucket: D0 + 10 * HOUR,
      projectId: "proj_1",
      apiKeyId: "key_1",
      model: "tiny-chat",
      userId: "alice",
      requests: "1",
      inputTokens: "10",
      outputTokens: "5",
    },
    {
      bucket: D0 + 10 * HOUR,
      projectId: "proj_1",
      apiKeyId: "key_2",
      model: "tiny-chat",
      userId: "alice",
      requests: "1",
      inputTokens: "20",
      outputTokens: "1",
    },
    {
      bucket: D0 + 23 * HOUR,
      projectId: "proj_2",
      apiKeyId: "key_3",
      model: "tiny-chat",
      userId: null,
      requests: "1",
      inputTokens: "10",
      outputTokens: "5",
    },
    {
      bucket: D0 + DAY,
      projectId: "proj_1",
      apiKeyId: "key_1",
      model: "tiny-chat-2",
      userId: "bob",
      requests: "1",
      inputTokens: "7",
      outputTokens: "3",
    },
  ]);

  const byProject = await allRows("org_a", rowsQuery({ groupBy: ["project_id"] }));
  t.same(
    byProject.rows.map((row) => [row.bucket, row.projectId, row.apiKeyId, row.requests]),
    [
      [D0, "proj_1", null, "2"],
      [D0, "proj_2", null, "1"],
      [D0 + DAY, "proj_1", null, "1"],
    ],
  );
  const byUser = await allRows("org_a", rowsQuery({ groupBy: ["user_id"], bucketSeconds: DAY }));
  t.same(
    byUser.rows.map((row) => [row.bucket, row.userId, row.requests]),
    [
      [D0, null, "1"],
      [D0, "alice", "2"],
      [D0 + DAY, "bob", "1"],
    ],
    "sorted by the stored value: '' (no user) first",
  );
});

void t.test("filters", async (t) => {
  const sums = async (overrides: Partial<UsageRowsQuery>) =>
    (await allRows("org_a", rowsQuery({ endTime: D0 + 3 * DAY, bucketSeconds: DAY, ...overrides }))).rows.map(
      (row) => [row.bucket, row.requests],
    );
  t.same(await sums({ projectIds: ["proj_2"] }), [[D0, "1"]]);
  t.same(await sums({ apiKeyIds: ["key_2", "key_3"] }), [[D0, "2"]]);
  t.same(await sums({ models: ["tiny-chat-2"] }), [[D0 + DAY, "1"]]);
  t.same(await sums({ userIds: ["alice", "bob"] }), [
    [D0, "2"],
    [D0 + DAY, "1"],
  ]);
  t.same(await sums({ userIds: ["nobody"] }), []);
  t.same(await sums({ operations: ["completions"] }), [[D0, "1"]]);
  t.same(await sums({ projectIds: ["proj_1"], userIds: ["alice"], apiKeyIds: ["key_1"] }), [[D0, "1"]]);
});

void t.test("time: a minute counts where it starts, buckets are aligned to UTC multiples", async (t) => {
  const minutes = async (startTime: number, endTime: number, bucketSeconds: 60 | 3_600 | 86_400) =>
    (await allRows("org_a", rowsQuery({ startTime, endTime, bucketSeconds }))).rows.map((row) => [
      row.bucket,
      row.requests,
    ]);
  // Requests ended at 10:00:05 and 10:01:05.
  t.same(await minutes(D0 + 10 * HOUR, D0 + 10 * HOUR + 120, 60), [
    [D0 + 10 * HOUR, "1"],
    [D0 + 10 * HOUR + 60, "1"],
  ]);
  t.same(
    await minutes(D0 + 10 * HOUR + 1, D0 + 10 * HOUR + 120, 60),
    [[D0 + 10 * HOUR + 60, "1"]],
    "the 10:00 minute starts before 10:00:01: it belongs to the range before",
  );
  t.same(
    await minutes(D0 + 9 * HOUR + 30 * 60, D0 + 10 * HOUR + 1, HOUR),
    [[D0 + 10 * HOUR, "1"]],
    "the 10:00 minute starts inside [09:30, 10:00:01)",
  );
  t.same(await minutes(D0 + 12 * HOUR, D0 + DAY + 60, DAY), [
    [D0, "1"],
    [D0 + DAY, "1"],
  ]);
});

void t.test("table choice: whole days from the day table, whole hours from the hour table", async (t) => {
  // Rows only in one table, so that the answer shows which table was read.
  const org = "org_tables";
  await record([{ at: D0 + DAY + 5 * HOUR, organizationId: org, requests: 1000 }], [TABLES[2]]);
  await record([{ at: D0 + 15 * HOUR, organizationId: org, requests: 100 }], [TABLES[1]]);
  await record([{ at: D0 + 10 * HOUR + 45 * 60, organizationId: org, requests: 10 }], [TABLES[0]]);
  await record([{ at: D0 + 10 * HOUR + 15 * 60, organizationId: org, requests: 1 }], [TABLES[0]]);
  const requests = async (startTime: number, endTime: number, bucketSeconds: 60 | 3_600 | 86_400) =>
    (await allRows(org, rowsQuery({ startTime, endTime, bucketSeconds }))).rows.map((row) => [
      row.bucket,
      row.requests,
    ]);
  t.same(
    await requests(D0 + 10 * HOUR + 30 * 60, D0 + 2 * DAY, DAY),
    [
      [D0, "110"],
      [D0 + DAY, "1000"],
    ],
    "10:30–11:00 from minutes, 11:00–24:00 from hours, the next day from the day table",
  );
  t.same(await requests(D0, D0 + 2 * DAY, HOUR), [[D0 + 15 * HOUR, "100"]], "hourly buckets: no day table");
  t.same(
    await requests(D0 + 10 * HOUR + 30 * 60, D0 + 2 * DAY, 60),
    [[D0 + 10 * HOUR + 45 * 60, "10"]],
    "minute buckets: the minute table only",
  );
});

void t.test("costs are summed exactly, beyond 2^53", async (t) => {
  const org = "org_big";
  await record([
    { at: D0, organizationId: org, inputCostPico: "99999999999999999999", outputCostPico: "1" },
    { at: D0 + 60, organizationId: org, inputCostPico: "1", outputCostPico: "9007199254740993" },
  ]);
  const { rows } = await allRows(org, rowsQuery());
  t.equal(rows[0]?.inputCostPico, "100000000000000000000");
  t.equal(rows[0]?.outputCostPico, "9007199254740994");
});

void t.test("continuations: many rows come in replies capped by rows and bytes", async (t) => {
  const org = "org_many";
  const users = Array.from(
    { length: 3000 },
    (_, index) => `${String(index).padStart(4, "0")}-${"u".repeat(250)}`,
  );
  await record(
    users.map((endUser, index) => ({
      at: D0 + (index % 2) * DAY + 60,
      organizationId: org,
      endUser,
      inputTokens: index,
    })),
  );
  const query = rowsQuery({ groupBy: ["user_id", "project_id"] });
  const first = await queryUsageRows(db, org, query);
  const size = Buffer.byteLength(JSON.stringify(first));
  t.ok(size <= MAX_USAGE_REPLY_BYTES + 1024, `one reply is ${size} bytes`);
  t.ok(first.rows.length < 2000, `the byte cap cut the first reply at ${first.rows.length} rows`);
  t.not(first.next, null, "with a continuation");

  const { rows, replies } = await allRows(org, query);
  t.ok(replies >= 2, `${replies} replies`);
  t.equal(rows.length, 3000, "every group once");
  t.equal(new Set(rows.map((row) => `${row.bucket}/${row.userId}`)).size, 3000, "no group twice");
  const tokens = rows.reduce((sum, row) => sum + Number(row.inputTokens), 0);
  t.equal(tokens, (2999 * 3000) / 2, "the sums add up");
  t.same(
    rows.map((row) => [row.bucket, row.userId]),
    [...rows]
      .sort((a, b) => a.bucket - b.bucket || ((a.userId ?? "") < (b.userId ?? "") ? -1 : 1))
      .map((row) => [row.bucket, row.userId]),
    "in sort order",
  );

  const small = await allRows(org, query, { maxRows: 250 });
  t.equal(small.replies, 12, "a row cap of 250: 12 replies");
  t.same(small.rows, rows, "the same rows whatever the page size");
});

void t.test(
  "served on the bus: queue group, organization of the principal only, bad queries refused",
  async (t) => {
    const { bus, close } = await connectTestBus();
    t.teardown(close);
    const subscriptions = serveUsageApi(bus, db);
    t.equal(subscriptions.length, 1);
    const principal = (organizationId: string): AdminPrincipal => ({
      kind: "admin_key",
      organizationId,
      role: "reader",
      id: "key_admin",
      actor: {
        type: "api_key",
        api_key: { id: "key_admin", type: "service_account", ip_address: "127.0.0.1" },
      },
    });
    const subject = usageApiSubjects.rows;
    const ask = (organizationId: string, query: UsageRowsQuery) =>
      bus.request(
        subject,
        subject.subject,
        { principal: principal(organizationId), ...query },
        { timeoutMs: 5000 },
      );

    const a = await ask("org_a", rowsQuery({ groupBy: ["user_id"] }));
    const b = await ask("org_b", rowsQuery({ groupBy: ["user_id"] }));
    t.same(
      b.rows.map((row) => [row.bucket, row.userId, row.inputTokens]),
      [[D0, "alice", "1000"]],
      "org_b sees its rows only",
    );
    t.notOk(
      a.rows.some((row) => row.inputTokens === "1000"),
      "org_a does not see org_b's rows in the same buckets",
    );
    const nobody = await ask(
      "org_none",
      rowsQuery({ operations: ["audio.transcriptions", "chat.completions"] }),
    );
    t.same(nobody, { rows: [], next: null });
    const audioB = await ask("org_b", rowsQuery({ operations: ["audio.transcriptions"] }));
    t.same(
      audioB.rows.map((row) => [row.bucket, row.audioSeconds]),
      [[D0 + DAY, "9"]],
    );

    // Following continuations over the bus.
    let after = null;
    let count = 0;
    let messages = 0;
    do {
      const reply: Awaited<ReturnType<typeof ask>> = await ask(
        "org_many",
        rowsQuery({ groupBy: ["user_id"], after }),
      );
      count += reply.rows.length;
      messages += 1;
      after = reply.next;
    } while (after);
    t.equal(count, 3000);
    t.ok(messages >= 2, `${messages} messages`);

    await t.rejects(
      ask("org_a", rowsQuery({ startTime: D0, endTime: D0 })),
      new PlatformError("invalid_request", "end_time must be after start_time.", "end_time"),
    );
    await t.rejects(ask("org_a", rowsQuery({ groupBy: ["model"], after: { bucket: D0, key: [] } })), {
      code: "invalid_request",
      param: "page",
    });
  },
);
