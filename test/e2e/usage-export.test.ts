// The usage export (GET /v1/organization/usage/export) with the platform's processes as in production: a million
// raw events stream out as CSV and as JSON Lines with every process's memory flat (RSS growth under 50 MB in the
// gateway, in metering and in this process, which parses the body as it arrives), and parse back to the totals
// Postgres holds. Another organization's admin key exports none of them; bad parameters are 400s naming the parameter;
// an unreachable metering is an ordinary error before the body, and a cut connection after it has started.
import t from "tap";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { get, type IncomingHttpHeaders, type IncomingMessage } from "node:http";
import { createInterface } from "node:readline";
import { Readable } from "node:stream";
import type { ReadableStream as WebReadableStream } from "node:stream/web";
import { Ajv2020 } from "ajv/dist/2020.js";
import addFormatsModule from "ajv-formats";
import { sql } from "kysely";
import { parse } from "yaml";
import { USAGE_EXPORT_FIELDS } from "@llmaas/contracts";
import { rawRequest } from "../support/client.js";
import { startIdentityProvider } from "../support/identity-provider.js";
import { REPO_ROOT, startStack } from "../support/stack.js";
import { createTenant } from "../support/tenant.js";

const EVENTS = 1_000_000;
/** Events sharing one finished_at: the export's order must break ties by id, across page boundaries too. */
const PER_MILLISECOND = 8;
const MAX_RSS_GROWTH_MB = 50;

// No llm-worker: the export never reaches one. Gateway, auth and metering run as separate processes.
const stack = await startStack({ workers: 0 });
t.teardown(() => stack.stop());
const other = await createTenant(stack.baseURL, stack.operatorToken, stack.secrets, "Other organization");

// An hour ago, on a whole second: well inside the raw events' retention.
const startTime = Math.floor(Date.now() / 1000) - 3600;
const lastMs = Math.floor((EVENTS - 1) / PER_MILLISECOND);
const endTime = startTime + Math.ceil((lastMs + 1) / 1000);

// ---- the documented format: the route's JSON Lines schema in docs/openapi.yaml
interface Operation {
  responses: Record<string, { content: Record<string, { schema: Record<string, unknown> }> }>;
}
const documented = (
  parse(readFileSync(join(REPO_ROOT, "docs/openapi.yaml"), "utf8")) as {
    paths: Record<string, { get: Operation }>;
  }
).paths["/organization/usage/export"]?.get;
const documentedContent = documented?.responses["200"]?.content ?? {};
const lineSchema = documentedContent["application/x-ndjson"]?.schema ?? {};
const ajv = new Ajv2020({ strict: false, allErrors: true });
(addFormatsModule as unknown as (instance: Ajv2020) => void)(ajv);
const validateLine = ajv.compile(lineSchema);

// ---- streaming helpers

/** RFC 4180, the whole of a small body: quoted fields may hold commas, doubled quotes and line breaks. */
function parseCsv(text: string): string[][] {
  const records: string[][] = [];
  let record: string[] = [];
  let field = "";
  let quoted = false;
  for (let index = 0; index < text.length; index++) {
    const char = text[index];
    if (quoted) {
      if (char !== '"') field += char;
      else if (text[index + 1] === '"') {
        field += '"';
        index++;
      } else quoted = false;
    } else if (char === '"') quoted = true;
    else if (char === ",") {
      record.push(field);
      field = "";
    } else if (char === "\r" && text[index + 1] === "\n") {
      record.push(field);
      records.push(record);
      record = [];
      field = "";
      index++;
    } else field += char;
  }
  if (field !== "" || record.length > 0) throw new Error("the CSV body does not end with CRLF");
  return records;
}

/** One CSV record that holds no line break (the big export's events hold none), as `parseCsv` reads it. */
function parseCsvLine(line: string): string[] {
  if (!line.includes('"')) return line.split(",");
  const [record] = parseCsv(`${line}\r\n`);
  if (!record) throw new Error("an empty CSV line");
  return record;
}

function vmRssKb(pid: number): number {
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  if (!match) throw new Error(`no VmRSS for ${pid}`);
  return Number(match[1]);
}

/** Samples each process's resident set every 20 ms: the peak during the export against the baseline before it. */
function watchRss(pids: Record<string, number>) {
  const baseline = Object.fromEntries(Object.entries(pids).map(([name, pid]) => [name, vmRssKb(pid)]));
  const peak = { ...baseline };
  const sample = (): void => {
    for (const [name, pid] of Object.entries(pids)) peak[name] = Math.max(peak[name] ?? 0, vmRssKb(pid));
  };
  const timer = setInterval(sample, 20);
  return {
    stop() {
      clearInterval(timer);
      sample();
      return Object.fromEntries(
        Object.keys(pids).map((name) => {
          const before = (baseline[name] ?? 0) / 1024;
          const most = (peak[name] ?? 0) / 1024;
          return [name, { baselineMb: before, peakMb: most, growthMb: most - before }];
        }),
      );
    },
  };
}

const exportPath = (query: string) => `/organization/usage/export?${query}`;

/** The export's body, read line by line as it arrives (never whole). */
async function streamExport(
  query: string,
  apiKey: string,
  onLine: (line: string) => void,
): Promise<{ headers: IncomingHttpHeaders; bytes: number }> {
  // node:http, as a plain client would: a stream straight off the socket.
  const body = await new Promise<IncomingMessage>((resolve, reject) => {
    get(
      `${stack.baseURL}${exportPath(query)}`,
      { headers: { authorization: `Bearer ${apiKey}` } },
      resolve,
    ).on("error", reject);
  });
  if (body.statusCode !== 200) {
    let text = "";
    for await (const chunk of body) text += String(chunk);
    throw new Error(`export answered ${body.statusCode}: ${text}`);
  }
  let bytes = 0;
  body.on("data", (chunk: Buffer) => {
    bytes += chunk.length;
  });
  // Each line is handled as it is split off, synchronously: nothing queues up between the socket and the checks.
  const lines = createInterface({ input: body, crlfDelay: Infinity });
  let failure: Error | undefined;
  lines.on("line", (line) => {
    try {
      onLine(line);
    } catch (error) {
      failure ??= error instanceof Error ? error : new Error(String(error));
      body.destroy();
      lines.close();
    }
  });
  await once(lines, "close");
  if (failure !== undefined) throw failure;
  return { headers: body.headers, bytes };
}

// ---- the data: a million events of the stack's organization, a few of another's, some outside the period

interface Totals {
  events: bigint;
  inputTokens: bigint;
  outputTokens: bigint;
  audioSeconds: bigint;
  inputCost: bigint;
  outputCost: bigint;
  audioCost: bigint;
}

const insertStarted = Date.now();
// In four slices at once: one statement per connection of the test's pool.
const SLICES = 4;
await Promise.all(
  Array.from({ length: SLICES }, (_, slice) => {
    const from = (EVENTS / SLICES) * slice;
    const to = (EVENTS / SLICES) * (slice + 1) - 1;
    return sql`
      insert into usage_events (request_id, organization_id, project_id, key_id, end_user, model, operation,
        prompt_tokens, completion_tokens, audio_seconds, status, served_by, started_at, finished_at, currency,
        input_price_pico, output_price_pico, audio_price_pico, input_cost_pico, output_cost_pico, audio_cost_pico)
      select 'chatcmpl-export-' || lpad(i::text, 7, '0'), ${stack.organizationId}, ${stack.projectId},
        ${stack.keyId},
        case i % 4 when 0 then null when 1 then 'user-' || (i % 1000) when 2 then 'O''Brien, "the" ' || (i % 7)
          else 'ünïcødé ' || (i % 13) end,
        case when i % 10 = 0 then 'tiny-embed' else 'tiny-chat' end,
        case when i % 10 = 0 then 'embeddings' else 'chat.completions' end,
        1 + i % 1000, case when i % 10 = 0 then 0 else i % 97 end, case when i % 1000 = 7 then 61 else 0 end,
        case when i % 50 = 1 then 'cancelled' else 'completed' end, 'llm-worker-' || (1 + i % 3),
        f - interval '250 milliseconds', f,
        case when i % 100 = 0 then null else 'EUR' end,
        p.input, p.output, p.audio,
        (1 + i % 1000) * p.input,
        (case when i % 10 = 0 then 0 else i % 97 end) * p.output,
        (case when i % 1000 = 7 then 61 else 0 end) * p.audio / 60
      from generate_series(${from}::integer, ${to}::integer) as i,
        lateral (select to_timestamp(${startTime}) + (i / ${PER_MILLISECOND}) * interval '1 millisecond' as f) as t,
        lateral (select
          case when i % 100 = 0 then 0 else 1000000007 end::bigint as input,
          case when i % 100 = 0 then 0 else 3000000011 end::bigint as output,
          case when i % 100 = 0 then 0 else 6000000000 end::bigint as audio) as p`.execute(stack.db);
  }),
);
const outside = (requestId: string, finishedAt: Date) => ({
  request_id: requestId,
  organization_id: stack.organizationId,
  project_id: stack.projectId,
  key_id: stack.keyId,
  end_user: null,
  model: "tiny-chat",
  operation: "chat.completions",
  prompt_tokens: 1,
  completion_tokens: 1,
  status: "completed",
  served_by: "llm-worker-1",
  started_at: finishedAt,
  finished_at: finishedAt,
  currency: "EUR",
  input_price_pico: 1,
  output_price_pico: 1,
  audio_price_pico: 0,
  input_cost_pico: 1,
  output_cost_pico: 1,
  audio_cost_pico: 0,
});
const otherEvents = [
  { user: 'line one\nline two, "quoted"', tokens: 11 },
  { user: "=SUM(A1:A9)", tokens: 12 },
  { user: null, tokens: 13 },
];
await stack.db
  .insertInto("usage_events")
  .values([
    // Just before the period, and exactly at its (exclusive) end.
    outside("chatcmpl-export-before", new Date(startTime * 1000 - 1)),
    outside("chatcmpl-export-at-end", new Date(endTime * 1000)),
    ...otherEvents.map((event, index) => ({
      ...outside(`chatcmpl-other-${index}`, new Date(startTime * 1000 + index)),
      organization_id: other.organizationId,
      project_id: other.projectId,
      key_id: other.keyId,
      end_user: event.user,
      prompt_tokens: event.tokens,
    })),
  ])
  .execute();
const insertSeconds = (Date.now() - insertStarted) / 1000;
t.comment(`inserted ${EVENTS} events in ${insertSeconds.toFixed(1)} s`);

const sums = await sql<Record<keyof Totals, string>>`
  select count(*) as events, sum(prompt_tokens) as "inputTokens", sum(completion_tokens) as "outputTokens",
    sum(audio_seconds) as "audioSeconds", sum(input_cost_pico) as "inputCost",
    sum(output_cost_pico) as "outputCost", sum(audio_cost_pico) as "audioCost"
  from usage_events
  where organization_id = ${stack.organizationId}
    and finished_at >= to_timestamp(${startTime}) and finished_at < to_timestamp(${endTime})`.execute(
  stack.db,
);
const expected = Object.fromEntries(
  Object.entries(sums.rows[0] ?? {}).map(([name, value]) => [name, BigInt(value)]),
) as unknown as Totals;

/** Reads an exported event back, from a JSON object or a CSV record, into the totals; checks order as it goes. */
function tally() {
  const totals: Totals = {
    events: 0n,
    inputTokens: 0n,
    outputTokens: 0n,
    audioSeconds: 0n,
    inputCost: 0n,
    outputCost: 0n,
    audioCost: 0n,
  };
  let previous = "";
  const problems: string[] = [];
  let cost = 0n;
  return {
    totals,
    problems,
    get cost() {
      return cost;
    },
    add(event: Record<(typeof USAGE_EXPORT_FIELDS)[number], unknown>) {
      totals.events++;
      totals.inputTokens += BigInt(event.input_tokens as number | string);
      totals.outputTokens += BigInt(event.output_tokens as number | string);
      totals.audioSeconds += BigInt(event.audio_seconds as number | string);
      const pico = [event.input_cost_pico, event.output_cost_pico, event.audio_cost_pico].map((value) =>
        BigInt(value as string),
      ) as [bigint, bigint, bigint];
      totals.inputCost += pico[0];
      totals.outputCost += pico[1];
      totals.audioCost += pico[2];
      const eventCost = BigInt((event.cost as string).replace(".", ""));
      cost += eventCost;
      if (problems.length > 10) return;
      if (eventCost !== pico[0] + pico[1] + pico[2])
        problems.push(`${String(event.id)}: cost is not the sum`);
      if (event.organization_id !== stack.organizationId) problems.push(`${String(event.id)}: organization`);
      const key = `${String(event.finished_at)} ${String(event.id)}`;
      if (key <= previous) problems.push(`${String(event.id)}: out of order after ${previous}`);
      previous = key;
    },
  };
}

const query = (format: string) => `start_time=${startTime}&end_time=${endTime}&format=${format}`;
const mediaType = (contentType: string | null | undefined) => contentType?.split(";")[0]?.trim() ?? "";

// ---- the checks

void t.test("bad parameters are 400s that name the parameter", async (t) => {
  const cases: Array<[string, string]> = [
    ["end_time=100", "start_time"],
    ["start_time=100", "end_time"],
    ["start_time=yesterday&end_time=100", "start_time"],
    ["start_time=1.5&end_time=100", "start_time"],
    ["start_time=-1&end_time=100", "start_time"],
    ["start_time=100&end_time=", "end_time"],
    ["start_time=100&end_time=100", "end_time"],
    ["start_time=200&end_time=100", "end_time"],
    ["start_time=100&start_time=101&end_time=200", "start_time"],
    ["start_time=100&end_time=200&format=xlsx", "format"],
    ["start_time=100&end_time=200&format=CSV", "format"],
    ["start_time=100&end_time=200&limit=10", "limit"],
    ["start_time=100&end_time=200&project_ids[]=proj_1", "project_ids[]"],
  ];
  for (const [search, param] of cases) {
    const response = await rawRequest(stack, exportPath(search), { apiKey: stack.adminKey });
    const error = (response.json as { error?: { type?: string; param?: string | null } } | undefined)?.error;
    t.equal(response.status, 400, `${search}: 400`);
    t.match(error, { type: "invalid_request_error", param }, `${search}: names ${param}`);
  }
  const projectKey = await rawRequest(stack, exportPath(query("csv")), { apiKey: stack.apiKey });
  t.equal(projectKey.status, 403, "a project API key may not export");
  const anonymous = await rawRequest(stack, exportPath(query("csv")), { apiKey: null });
  t.equal(anonymous.status, 401, "nor may anyone without a key");
});

void t.test("another organization's admin key exports its own events, none of these", async (t) => {
  const csv = await rawRequest(stack, exportPath(query("csv")), { apiKey: other.adminKey });
  t.equal(csv.status, 200);
  t.equal(csv.headers.get("content-type"), "text/csv; charset=utf-8");
  t.equal(
    csv.headers.get("content-disposition"),
    `attachment; filename="${other.organizationId}-usage-${startTime}-${endTime}.csv"`,
  );
  const [header, ...records] = parseCsv(csv.text);
  t.same(header, USAGE_EXPORT_FIELDS, "the header names the fields, in the documented order");
  t.same(header, Object.keys(lineSchema.properties ?? {}), "as docs/openapi.yaml lists them");
  const column = (name: (typeof USAGE_EXPORT_FIELDS)[number]) => USAGE_EXPORT_FIELDS.indexOf(name);
  t.same(
    records.map((record) => [record[column("organization_id")], record[column("user")]]),
    otherEvents.map((event) => [other.organizationId, event.user ?? ""]),
    "its three events only, the end users' commas, quotes and line breaks intact",
  );

  const jsonl = await rawRequest(stack, exportPath(`start_time=${startTime}&end_time=${endTime}`), {
    apiKey: other.adminKey,
  });
  t.equal(jsonl.headers.get("content-type"), "application/x-ndjson", "JSON Lines by default");
  t.ok(jsonl.text.endsWith("\n"), "every line ends with a line break");
  const events = jsonl.text
    .split("\n")
    .slice(0, -1)
    .map((line) => JSON.parse(line) as Record<string, unknown>);
  t.same(
    events.map((event) => [event.organization_id, event.user, event.input_tokens]),
    otherEvents.map((event) => [other.organizationId, event.user, event.tokens]),
  );
  for (const event of events) {
    t.ok(validateLine(event), `a line matches its documented schema ${JSON.stringify(validateLine.errors)}`);
    t.same(Object.keys(event), USAGE_EXPORT_FIELDS, "the same fields, in the same order, as the CSV");
  }
  t.same(
    Object.keys(documentedContent).sort(),
    ["application/x-ndjson", "text/csv"],
    "the documented content types are the ones served",
  );

  const empty = await rawRequest(stack, exportPath("start_time=0&end_time=1&format=csv"), {
    apiKey: other.adminKey,
  });
  t.equal(empty.text, `${USAGE_EXPORT_FIELDS.join(",")}\r\n`, "an empty period is the header alone");
});

void t.test("an administrator with the reader role exports too", async (t) => {
  const idp = await startIdentityProvider({ onToken: (jwt) => stack.secrets.add("identity token", jwt) });
  t.teardown(() => idp.close());
  const sso = await rawRequest(stack, `/operator/organizations/${other.organizationId}/oidc`, {
    apiKey: stack.operatorToken,
    body: JSON.stringify({
      issuer: idp.issuer,
      audience: idp.audience,
      jwks_uri: idp.jwksUri,
      role_claim: "groups",
      owner_values: ["owners"],
      reader_values: ["readers"],
    }),
  });
  t.equal(sso.status, 200, "the operator sets up the organization's SSO");
  const reader = await idp.sign({ claims: { sub: "grace", email: "grace@other.test", groups: ["readers"] } });
  const csv = await rawRequest(stack, exportPath(query("csv")), { apiKey: reader });
  t.equal(csv.status, 200);
  t.equal(parseCsv(csv.text).length, 1 + otherEvents.length, "the header and the organization's events");
});

for (const format of ["csv", "jsonl"] as const) {
  void t.test(
    `${EVENTS} events stream as ${format} in flat memory and parse back to the same totals`,
    async (t) => {
      const counted = tally();
      let header: string[] | undefined;
      let lines = 0;
      const watch = watchRss({
        gateway: stack.services.gateway?.child.pid ?? 0,
        metering: stack.services.metering?.child.pid ?? 0,
        test: process.pid,
      });
      const started = Date.now();
      const { headers, bytes } = await streamExport(query(format), stack.adminKey, (line) => {
        lines++;
        if (format === "jsonl") {
          const event = JSON.parse(line) as Record<(typeof USAGE_EXPORT_FIELDS)[number], unknown>;
          // The documented schema for a sample: checking all of them would time Ajv, not the export.
          if (lines % 10_000 === 1 && !validateLine(event)) {
            counted.problems.push(`line ${lines} is off its schema: ${JSON.stringify(validateLine.errors)}`);
          }
          counted.add(event);
          return;
        }
        const record = parseCsvLine(line);
        if (!header) {
          header = record;
          return;
        }
        const event = Object.fromEntries(header.map((name, index) => [name, record[index]]));
        counted.add(event as Record<(typeof USAGE_EXPORT_FIELDS)[number], unknown>);
      });
      const seconds = (Date.now() - started) / 1000;
      const rss = watch.stop();

      t.equal(mediaType(headers["content-type"]), format === "csv" ? "text/csv" : "application/x-ndjson");
      t.ok(
        Object.keys(documentedContent).includes(mediaType(headers["content-type"])),
        "a documented content type",
      );
      if (format === "csv") t.same(header, USAGE_EXPORT_FIELDS);
      t.same(
        counted.problems,
        [],
        "every event in order, of this organization, its cost the sum of its costs",
      );
      t.same(counted.totals, expected, "the same count, tokens and costs as Postgres sums");
      t.equal(counted.cost, expected.inputCost + expected.outputCost + expected.audioCost, "the same cost");
      t.ok(
        expected.inputCost > BigInt(Number.MAX_SAFE_INTEGER),
        "totals beyond 2^53, so floats would have lost",
      );
      t.comment(
        `${format}: ${counted.totals.events} events, ${(bytes / 1e6).toFixed(0)} MB in ${seconds.toFixed(1)} s ` +
          `(${Math.round(Number(counted.totals.events) / seconds)} events/s)`,
      );
      for (const [name, figures] of Object.entries(rss)) {
        t.comment(
          `${format}: ${name} RSS ${figures.baselineMb.toFixed(1)} MB before, peak ${figures.peakMb.toFixed(1)} MB, ` +
            `growth ${figures.growthMb.toFixed(1)} MB`,
        );
        // In the whole suite, young-generation collections promote garbage that only a full collection frees; the
        // gateway's HEAP_GROWING_PERCENT (50) is what keeps that under the bound (docs/usage-export.md).
        t.ok(
          figures.growthMb < MAX_RSS_GROWTH_MB,
          `${format}: ${name}'s RSS grew less than ${MAX_RSS_GROWTH_MB} MB`,
        );
      }
    },
  );
}

void t.test(
  "metering unreachable: an error answer before the body, a cut connection during it",
  async (t) => {
    const response = await fetch(`${stack.baseURL}${exportPath(query("csv"))}`, {
      headers: { authorization: `Bearer ${stack.adminKey}` },
    });
    t.equal(response.status, 200);
    const body = Readable.fromWeb(response.body as WebReadableStream<Uint8Array>);
    const lines = createInterface({ input: body, crlfDelay: Infinity })[Symbol.asyncIterator]();
    for (let index = 0; index < 10; index++) await lines.next();
    stack.services.metering?.kill();
    let read = 10;
    const outcome = await (async () => {
      try {
        while (!(await lines.next()).done) read++;
        return "ended";
      } catch (error) {
        return `failed: ${(error as Error).message}`;
      }
    })();
    t.match(outcome, /^failed/, `the body breaks off (after ${read} lines): ${outcome}`);
    t.ok(read < EVENTS, "short of the whole export");

    const after = await rawRequest(stack, exportPath(query("jsonl")), { apiKey: stack.adminKey });
    t.equal(after.status, 503, "a new export is an ordinary error");
    t.match(after.json, { error: { type: "server_error" } });
  },
);
