// OpenAI's Usage and Costs API, driven by OpenAI's own SDK (`client.admin.organization.usage.*`): requests made
// through two keys of two projects, with several `user` values, come back summed exactly as their clients were told,
// grouped every way OpenAI allows, at every bucket width, page after page; costs are tokens times the catalogue's
// prices; another organization sees none of it; bad parameters are 400s that name the parameter. Every answer is
// checked against OpenAI's `UsageResponse` by the test client.
import t, { type Test } from "tap";
import type OpenAI from "openai";
import { startStack } from "../support/stack.js";
import { adminClient, openaiClient, rawRequest } from "../support/client.js";
import { apiCall, createTenant } from "../support/tenant.js";

const stack = await startStack();
t.teardown(() => stack.stop());
const usageApi = adminClient(stack).admin.organization.usage;

/** Minute-aligned, so that the minute of the first request is inside every range asked for. */
const T0 = Math.floor(Date.now() / 60_000) * 60;

// ---- a second project and key in the organization, and another organization
const projectB = await apiCall(stack.baseURL, stack.adminKey, "POST", "/organization/projects", {
  name: "Second project",
});
const accountB = await apiCall(
  stack.baseURL,
  stack.adminKey,
  "POST",
  `/organization/projects/${String(projectB.id)}/service_accounts`,
  { name: "Second application" },
);
stack.secrets.collect(accountB);
const keyB = accountB.api_key as { id: string; value: string };
const other = await createTenant(stack.baseURL, stack.operatorToken, stack.secrets, "Other organization");

interface Caller {
  client: OpenAI;
  projectId: string;
  keyId: string;
}
const callerA: Caller = { client: openaiClient(stack), projectId: stack.projectId, keyId: stack.keyId };
const callerB: Caller = {
  client: openaiClient(stack, keyB.value),
  projectId: String(projectB.id),
  keyId: keyB.id,
};
const callerOther: Caller = {
  client: openaiClient(stack, other.apiKey),
  projectId: other.projectId,
  keyId: other.keyId,
};

// ---- prices, from GET /v1/models when it shows them (the default test catalogue's otherwise)
interface Prices {
  inputPicoPerToken: bigint;
  outputPicoPerToken: bigint;
}
const DEFAULT_PRICES: Record<string, { input: string; output: string }> = {
  "tiny-chat": { input: "0.5", output: "1.5" },
  "tiny-embed": { input: "0.1", output: "0" },
};
/** A price per million tokens is that many pico-units per token times 1e6: "0.5" → 500000. */
function picoPerToken(perMillion: unknown): bigint {
  const text = String(perMillion);
  const [whole = "0", fraction = ""] = text.split(".");
  return BigInt(whole + fraction.padEnd(6, "0").slice(0, 6));
}
const models = (await rawRequest(stack, "/models")).json as {
  data: Array<{ id: string; pricing?: Record<string, unknown> }>;
};
const prices = new Map<string, Prices>();
let pricesFrom = "the default test catalogue";
for (const [id, fallback] of Object.entries(DEFAULT_PRICES)) {
  const pricing = models.data.find((model) => model.id === id)?.pricing;
  if (pricing?.input_per_million !== undefined) pricesFrom = "GET /v1/models";
  prices.set(id, {
    inputPicoPerToken: picoPerToken(pricing?.input_per_million ?? fallback.input),
    outputPicoPerToken: picoPerToken(pricing?.output_per_million ?? fallback.output),
  });
}

// ---- traffic
type Kind = "completions" | "embeddings";
interface Sent {
  organizationId: string;
  kind: Kind;
  projectId: string;
  keyId: string;
  model: string;
  user: string | null;
  input: number;
  output: number;
  /** When the client had the whole answer (ms). */
  endedAt: number;
}
const sent: Sent[] = [];
const lags: number[] = [];

async function chat(caller: Caller, user: string | null, stream: boolean): Promise<OpenAI.CompletionUsage> {
  const body = {
    model: "tiny-chat",
    messages: [{ role: "user" as const, content: `Tell ${user ?? "nobody"} a story.` }],
    max_tokens: 6,
    ...(user === null ? {} : { user }),
  };
  if (!stream) {
    const completion = await caller.client.chat.completions.create(body);
    if (!completion.usage) throw new Error("no usage");
    return completion.usage;
  }
  let usage: OpenAI.CompletionUsage | undefined;
  const chunks = await caller.client.chat.completions.create({
    ...body,
    stream: true,
    stream_options: { include_usage: true },
  });
  for await (const chunk of chunks) usage = chunk.usage ?? usage;
  if (!usage) throw new Error("no usage chunk");
  return usage;
}

async function complete(
  caller: Caller,
  user: string | null,
  stream: boolean,
): Promise<OpenAI.CompletionUsage> {
  const body = { model: "tiny-chat", prompt: "Once upon a time", max_tokens: 5, ...(user ? { user } : {}) };
  if (!stream) {
    const completion = await caller.client.completions.create(body);
    if (!completion.usage) throw new Error("no usage");
    return completion.usage;
  }
  let usage: OpenAI.CompletionUsage | undefined;
  const chunks = await caller.client.completions.create({
    ...body,
    stream: true,
    stream_options: { include_usage: true },
  });
  for await (const chunk of chunks) usage = chunk.usage ?? usage;
  if (!usage) throw new Error("no usage chunk");
  return usage;
}

async function embed(caller: Caller, user: string | null): Promise<OpenAI.CompletionUsage> {
  const response = await caller.client.embeddings.create({
    model: "tiny-embed",
    input: ["the first text", `a second one for ${user ?? "nobody"}`],
    ...(user ? { user } : {}),
  });
  return { prompt_tokens: response.usage.prompt_tokens, completion_tokens: 0, total_tokens: 0 };
}

interface Bucket {
  start_time: number;
  end_time: number;
  results: Array<Record<string, unknown>>;
}
interface UsagePage {
  object: "page";
  data: Bucket[];
  has_more: boolean;
  next_page: string | null;
}
type Query = Record<string, unknown> & { start_time: number };

const ENDPOINTS = {
  completions: (query: Query, client = usageApi) => client.completions(query),
  embeddings: (query: Query, client = usageApi) => client.embeddings(query),
  audio_transcriptions: (query: Query, client = usageApi) => client.audioTranscriptions(query),
  costs: (query: Query, client = usageApi) => client.costs(query),
};
type Endpoint = keyof typeof ENDPOINTS;

async function page(endpoint: Endpoint, query: Query, client = usageApi): Promise<UsagePage> {
  return (await ENDPOINTS[endpoint](query, client)) as unknown as UsagePage;
}

/** Every bucket from `start_time` to now, following `next_page`. */
async function allBuckets(endpoint: Endpoint, query: Query, client = usageApi): Promise<Bucket[]> {
  const buckets: Bucket[] = [];
  let next: string | null = null;
  do {
    const answer: UsagePage = await page(endpoint, next ? { ...query, page: next } : query, client);
    buckets.push(...answer.data);
    next = answer.next_page;
    if (answer.has_more !== (next !== null)) throw new Error("has_more and next_page disagree");
  } while (next);
  return buckets;
}

function results(buckets: Bucket[]): Array<Record<string, unknown>> {
  return buckets.flatMap((bucket) => bucket.results);
}

function total(buckets: Bucket[], field: string): number {
  return results(buckets).reduce((sum, result) => sum + Number(result[field] ?? 0), 0);
}

/** Sends one request, then asks the usage API until it shows it: the visibility lag. */
async function send(
  caller: Caller,
  kind: Kind,
  run: () => Promise<OpenAI.CompletionUsage>,
  user: string | null,
) {
  const usage = await run();
  const endedAt = Date.now();
  const model = kind === "embeddings" ? "tiny-embed" : "tiny-chat";
  const organizationId = caller === callerOther ? other.organizationId : stack.organizationId;
  sent.push({
    organizationId,
    kind,
    projectId: caller.projectId,
    keyId: caller.keyId,
    model,
    user,
    input: usage.prompt_tokens,
    output: usage.completion_tokens,
    endedAt,
  });
  const expected = sent.filter((item) => item.organizationId === organizationId && item.kind === kind).length;
  const client =
    caller === callerOther ? adminClient(stack, other.adminKey).admin.organization.usage : usageApi;
  for (;;) {
    const buckets = (await page(kind, { start_time: T0, bucket_width: "1d" }, client)).data;
    if (total(buckets, "num_model_requests") >= expected) break;
    if (Date.now() - endedAt > 30_000) throw new Error(`usage not visible 30 s after ${kind} ended`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  lags.push(Date.now() - endedAt);
}

// The other organization first, with a user name this one uses too.
await send(callerOther, "completions", () => chat(callerOther, "alice", false), "alice");
await send(callerA, "completions", () => chat(callerA, "alice", false), "alice");
await send(callerA, "completions", () => chat(callerA, "bob", true), "bob");
await send(callerA, "completions", () => chat(callerA, null, true), null);
await send(callerA, "completions", () => complete(callerA, null, false), null);
await send(callerA, "completions", () => complete(callerA, "alice", true), "alice");
await send(callerA, "embeddings", () => embed(callerA, "alice"), "alice");
await send(callerA, "embeddings", () => embed(callerA, null), null);
await send(callerB, "completions", () => chat(callerB, "carol", false), "carol");
await send(callerB, "completions", () => complete(callerB, "alice", true), "alice");
await send(callerB, "embeddings", () => embed(callerB, "carol"), "carol");

const ours = sent.filter((item) => item.organizationId === stack.organizationId);
const sorted = [...lags].sort((a, b) => a - b);
t.comment(
  `visibility lag, response end → usage API shows it (${lags.length} requests): ` +
    `min ${sorted[0]} ms, median ${sorted[Math.floor(sorted.length / 2)]} ms, max ${sorted.at(-1)} ms ` +
    `(${lags.join(", ")})`,
);

// ---- what the answers should hold
const GROUPS = ["project_id", "user_id", "api_key_id", "model"] as const;
type Group = (typeof GROUPS)[number];

function groupKey(values: Record<Group, unknown>, groupBy: readonly string[]): string {
  return JSON.stringify(GROUPS.map((group) => (groupBy.includes(group) ? (values[group] ?? null) : null)));
}

function sentGroup(item: Sent): Record<Group, unknown> {
  return { project_id: item.projectId, user_id: item.user, api_key_id: item.keyId, model: item.model };
}

/** Sums per group of what the clients were told. */
function expectedGroups(kind: Kind, groupBy: readonly string[]) {
  const groups = new Map<string, { input: number; output: number; requests: number }>();
  for (const item of ours.filter((entry) => entry.kind === kind)) {
    const key = groupKey(sentGroup(item), groupBy);
    const sums = groups.get(key) ?? { input: 0, output: 0, requests: 0 };
    sums.input += item.input;
    sums.output += item.output;
    sums.requests += 1;
    groups.set(key, sums);
  }
  return groups;
}

/** Sums per group of what the answer holds, over every bucket. */
function answeredGroups(buckets: Bucket[], groupBy: readonly string[]) {
  const groups = new Map<string, { input: number; output: number; requests: number }>();
  for (const result of results(buckets)) {
    const key = groupKey(result, GROUPS);
    const sums = groups.get(key) ?? { input: 0, output: 0, requests: 0 };
    sums.input += Number(result.input_tokens);
    sums.output += Number(result.output_tokens ?? 0);
    sums.requests += Number(result.num_model_requests);
    groups.set(key, sums);
    for (const group of GROUPS) {
      if (!groupBy.includes(group) && result[group] !== null)
        throw new Error(`${group} set without group_by`);
    }
  }
  return groups;
}

function subsets<T>(items: readonly T[]): T[][] {
  return items.reduce<T[][]>((all, item) => [...all, ...all.map((subset) => [...subset, item])], [[]]);
}

function sortedEntries<V>(map: Map<string, V>): Array<[string, V]> {
  return [...map.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/** Buckets are contiguous from `from`, each inside one aligned interval of the width and clipped to the range. */
function checkBuckets(t: Test, buckets: Bucket[], from: number, width: number, label: string): void {
  let start = from;
  for (const bucket of buckets) {
    if (
      bucket.start_time !== start ||
      bucket.end_time <= bucket.start_time ||
      Math.floor(bucket.start_time / width) !== Math.floor((bucket.end_time - 1) / width) ||
      (bucket.end_time % width !== 0 && bucket !== buckets.at(-1))
    ) {
      t.fail(`${label}: bucket ${JSON.stringify([bucket.start_time, bucket.end_time])} after ${start}`);
      return;
    }
    start = bucket.end_time;
  }
  t.pass(`${label}: ${buckets.length} contiguous aligned buckets`);
}

const WIDTHS = { "1m": 60, "1h": 3_600, "1d": 86_400 } as const;

void t.test("completions: totals are what the clients were told, every group_by and width", async (t) => {
  const totals = await allBuckets("completions", { start_time: T0 });
  const completions = ours.filter((item) => item.kind === "completions");
  t.equal(
    total(totals, "input_tokens"),
    completions.reduce((sum, item) => sum + item.input, 0),
    "input tokens",
  );
  t.equal(
    total(totals, "output_tokens"),
    completions.reduce((sum, item) => sum + item.output, 0),
    "output tokens",
  );
  t.equal(total(totals, "num_model_requests"), completions.length, "requests");
  t.match(results(totals)[0], {
    object: "organization.usage.completions.result",
    input_cached_tokens: 0,
    project_id: null,
    user_id: null,
    api_key_id: null,
    model: null,
    batch: null,
    service_tier: null,
  });

  for (const groupBy of subsets(["project_id", "user_id", "api_key_id", "model", "batch", "service_tier"])) {
    const buckets = await allBuckets("completions", { start_time: T0, group_by: groupBy });
    t.same(
      sortedEntries(answeredGroups(buckets, groupBy)),
      sortedEntries(expectedGroups("completions", groupBy)),
      `group_by=[${groupBy.join(",")}]`,
    );
    const batch = new Set(results(buckets).map((result) => result.batch));
    const tier = new Set(results(buckets).map((result) => result.service_tier));
    t.same([...batch], [groupBy.includes("batch") ? false : null], "batch");
    t.same([...tier], [groupBy.includes("service_tier") ? "default" : null], "service_tier");
  }

  for (const [width, seconds] of Object.entries(WIDTHS)) {
    const buckets = await allBuckets("completions", {
      start_time: T0,
      bucket_width: width,
      group_by: ["model"],
    });
    checkBuckets(t, buckets, T0, seconds, `bucket_width=${width}`);
    t.same(
      sortedEntries(answeredGroups(buckets, ["model"])),
      sortedEntries(expectedGroups("completions", ["model"])),
      `bucket_width=${width}: the same sums`,
    );
  }
  const user = await allBuckets("completions", { start_time: T0, group_by: ["user_id"] });
  t.ok(
    results(user).some((result) => result.user_id === null),
    "requests without `user` are grouped under user_id null",
  );
});

void t.test("completions: filters and batch", async (t) => {
  const sum = async (query: Record<string, unknown>) =>
    total(await allBuckets("completions", { start_time: T0, ...query }), "num_model_requests");
  const count = (filter: (item: Sent) => boolean) =>
    ours.filter((item) => item.kind === "completions" && filter(item)).length;
  t.equal(
    await sum({ project_ids: [callerB.projectId] }),
    count((item) => item.projectId === callerB.projectId),
  );
  t.equal(
    await sum({ api_key_ids: [callerA.keyId] }),
    count((item) => item.keyId === callerA.keyId),
  );
  t.equal(
    await sum({ user_ids: ["alice", "carol"] }),
    count((item) => item.user === "alice" || item.user === "carol"),
  );
  t.equal(
    await sum({ models: ["tiny-chat"] }),
    count(() => true),
  );
  t.equal(await sum({ models: ["tiny-embed"] }), 0);
  t.equal(
    await sum({ models: ["chat-default"] }),
    count(() => true),
    "an alias stands for its model",
  );
  t.equal(await sum({ project_ids: [other.projectId] }), 0, "another organization's project: nothing");
  t.equal(
    await sum({ batch: false }),
    count(() => true),
    "batch=false: every request",
  );
  const batchOnly = await allBuckets("completions", { start_time: T0, batch: true });
  t.ok(batchOnly.length > 0, "batch=true: the buckets...");
  t.same(results(batchOnly), [], "...and no results: the platform has no batch jobs");
});

void t.test("embeddings: every group_by and width", async (t) => {
  for (const groupBy of subsets(GROUPS)) {
    const buckets = await allBuckets("embeddings", { start_time: T0, group_by: groupBy });
    t.same(
      sortedEntries(answeredGroups(buckets, groupBy)),
      sortedEntries(expectedGroups("embeddings", groupBy)),
      `group_by=[${groupBy.join(",")}]`,
    );
    t.ok(
      results(buckets).every((result) => result.object === "organization.usage.embeddings.result"),
      "embeddings results",
    );
  }
  for (const [width, seconds] of Object.entries(WIDTHS)) {
    const buckets = await allBuckets("embeddings", { start_time: T0, bucket_width: width });
    checkBuckets(t, buckets, T0, seconds, `bucket_width=${width}`);
    t.equal(
      total(buckets, "input_tokens"),
      ours.filter((item) => item.kind === "embeddings").reduce((sum, item) => sum + item.input, 0),
    );
  }
});

void t.test("audio transcriptions: nothing to report, in OpenAI's shape", async (t) => {
  for (const groupBy of subsets(GROUPS)) {
    const buckets = await allBuckets("audio_transcriptions", { start_time: T0, group_by: groupBy });
    t.same(results(buckets), [], `group_by=[${groupBy.join(",")}]: empty buckets`);
  }
  for (const [width, seconds] of Object.entries(WIDTHS)) {
    const buckets = await allBuckets("audio_transcriptions", { start_time: T0, bucket_width: width });
    t.ok(buckets.length > 0, `bucket_width=${width}: buckets`);
    checkBuckets(t, buckets, T0, seconds, `bucket_width=${width}`);
    t.ok(
      buckets.every((bucket) => bucket.results.length === 0),
      "every bucket with results: []",
    );
  }
});

void t.test("audio rows, written straight into the aggregates (no worker transcribes yet)", async (t) => {
  // A past day, away from every other range asked for here.
  const day = Date.UTC(2026, 0, 15) / 1000;
  for (const [table, unit] of [
    ["usage_minute", 60],
    ["usage_hourly", 3_600],
    ["usage_daily", 86_400],
  ] as const) {
    await stack.db
      .insertInto(table)
      .values({
        organization_id: stack.organizationId,
        bucket_start: new Date(Math.floor((day + 10 * 3_600 + 90) / unit) * unit * 1000),
        project_id: stack.projectId,
        key_id: stack.keyId,
        model: "tiny-whisper",
        end_user: "dana",
        operation: "audio.transcriptions",
        requests: 2,
        input_tokens: 0,
        output_tokens: 0,
        audio_seconds: 75,
        input_cost_pico: 0,
        output_cost_pico: 0,
        audio_cost_pico: "7500000000",
      })
      .execute();
  }
  const audio = await page("audio_transcriptions", {
    start_time: day,
    end_time: day + 86_400,
    bucket_width: "1h",
    group_by: ["user_id", "model"],
  });
  t.equal(audio.data.length, 24);
  t.same(audio.data[10]?.results, [
    {
      object: "organization.usage.audio_transcriptions.result",
      seconds: 75,
      num_model_requests: 2,
      project_id: null,
      user_id: "dana",
      api_key_id: null,
      model: "tiny-whisper",
    },
  ]);
  const costs = await page("costs", { start_time: day, end_time: day + 86_400, group_by: ["line_item"] });
  t.same(costs.data[0]?.results, [
    {
      object: "organization.costs.result",
      amount: { value: 0.0075, currency: "eur" },
      line_item: "tiny-whisper, audio",
      project_id: null,
      api_key_id: null,
      quantity: 75,
      quantity_unit: "duration_seconds",
    },
  ]);
  const completions = await page("completions", { start_time: day, end_time: day + 86_400 });
  t.same(results(completions.data), [], "audio is not in the completions usage");
});

/** An exact amount of pico-units as currency units, through its decimal string. */
function amount(pico: bigint): number {
  const fraction = (pico % 10n ** 12n).toString().padStart(12, "0").replace(/0+$/, "");
  return Number(`${pico / 10n ** 12n}${fraction ? `.${fraction}` : ""}`);
}

void t.test("costs: tokens times the catalogue's prices, every group_by", async (t) => {
  t.comment(`prices from ${pricesFrom}`);
  const costOf = (item: Sent) => {
    const price = prices.get(item.model);
    if (!price) throw new Error(`no price for ${item.model}`);
    return {
      input: BigInt(item.input) * price.inputPicoPerToken,
      output: BigInt(item.output) * price.outputPicoPerToken,
    };
  };
  for (const groupBy of subsets(["project_id", "line_item", "api_key_id"])) {
    const buckets = await allBuckets("costs", { start_time: T0, group_by: groupBy });
    const answered = new Map<string, { value: number; quantity: number | null; unit: unknown }>();
    for (const result of results(buckets)) {
      t.equal((result.amount as { currency: string }).currency, "eur", "the platform's currency, lowercase");
      const key = JSON.stringify([result.project_id, result.api_key_id, result.line_item]);
      const seen = answered.get(key) ?? { value: 0, quantity: null, unit: result.quantity_unit };
      seen.value += (result.amount as { value: number }).value;
      if (result.quantity !== null) seen.quantity = (seen.quantity ?? 0) + Number(result.quantity);
      answered.set(key, seen);
    }
    const expected = new Map<string, { pico: bigint; quantity: number | null; unit: unknown }>();
    const add = (item: Sent, lineItem: string | null, pico: bigint, quantity: number | null) => {
      const key = JSON.stringify([
        groupBy.includes("project_id") ? item.projectId : null,
        groupBy.includes("api_key_id") ? item.keyId : null,
        lineItem,
      ]);
      const seen = expected.get(key) ?? {
        pico: 0n,
        quantity: null,
        unit: quantity === null ? null : "tokens",
      };
      seen.pico += pico;
      if (quantity !== null) seen.quantity = (seen.quantity ?? 0) + quantity;
      expected.set(key, seen);
    };
    for (const item of ours) {
      const cost = costOf(item);
      if (!groupBy.includes("line_item")) add(item, null, cost.input + cost.output, null);
      else {
        add(item, `${item.model}, input`, cost.input, item.input);
        if (item.output > 0) add(item, `${item.model}, output`, cost.output, item.output);
      }
    }
    t.same(
      // Across a UTC midnight a group has two buckets, whose amounts add up in floating point: to the pico-unit.
      sortedEntries(answered).map(([key, { value, ...rest }]) => [
        key,
        { value: Math.round(value * 1e12) / 1e12, ...rest },
      ]),
      sortedEntries(
        new Map([...expected].map(([key, { pico, ...rest }]) => [key, { value: amount(pico), ...rest }])),
      ),
      `group_by=[${groupBy.join(",")}]: amounts, quantities and units`,
    );
  }
  const buckets = await allBuckets("costs", { start_time: T0 });
  checkBuckets(t, buckets, T0, 86_400, "costs, bucket_width=1d");
  const totalPico = ours.reduce((sum, item) => sum + costOf(item).input + costOf(item).output, 0n);
  t.ok(
    totalPico > 0n,
    `the requests cost something (${amount(totalPico)} in all), so the sums above say something`,
  );
});

void t.test("pagination: limit and next_page walk the whole range", async (t) => {
  const expected = ours.filter((item) => item.kind === "completions").length;
  const first = await page("completions", { start_time: T0 - 5 * 3_600, bucket_width: "1h", limit: 2 });
  t.equal(first.data.length, 2, "two buckets");
  t.equal(first.has_more, true);
  t.match(first.next_page, /^page_/);
  const hours = await allBuckets("completions", { start_time: T0 - 5 * 3_600, bucket_width: "1h", limit: 2 });
  checkBuckets(t, hours, T0 - 5 * 3_600, 3_600, "1h pages of 2");
  t.equal(total(hours, "num_model_requests"), expected);
  const minutes = await allBuckets("completions", { start_time: T0, bucket_width: "1m", limit: 1 });
  checkBuckets(t, minutes, T0, 60, "1m pages of 1");
  t.equal(total(minutes, "num_model_requests"), expected);
  const days = await allBuckets("costs", { start_time: T0 - 10 * 86_400, limit: 3 });
  t.ok(days.length >= 10, `${days.length} daily cost buckets in pages of 3`);
  const end = Math.floor(Date.now() / 1000) + 60;
  const ended = await page("completions", { start_time: T0, end_time: end, bucket_width: "1m", limit: 1440 });
  t.equal(ended.data.at(-1)?.end_time, end, "the last bucket ends at end_time");
  t.equal(ended.has_more, false);
  t.equal(ended.next_page, null);
});

void t.test("another organization sees its own usage only", async (t) => {
  const otherUsage = adminClient(stack, other.adminKey).admin.organization.usage;
  const theirs = await allBuckets(
    "completions",
    { start_time: T0, group_by: ["project_id", "user_id"] },
    otherUsage,
  );
  const mine = sent.filter((item) => item.organizationId === other.organizationId);
  t.same(
    results(theirs).map((result) => [
      result.project_id,
      result.user_id,
      result.input_tokens,
      result.num_model_requests,
    ]),
    mine.map((item) => [item.projectId, item.user, item.input, 1]),
  );
  t.same(results(await allBuckets("embeddings", { start_time: T0 }, otherUsage)), []);
  const filtered = await allBuckets(
    "completions",
    { start_time: T0, project_ids: [stack.projectId] },
    otherUsage,
  );
  t.same(results(filtered), [], "filtering by this organization's project finds nothing");
  const costs = results(await allBuckets("costs", { start_time: T0, group_by: ["project_id"] }, otherUsage));
  t.same(
    costs.map((result) => result.project_id),
    [other.projectId],
  );
});

void t.test("bad parameters are 400s naming the parameter", async (t) => {
  const cases: Array<[string, string]> = [
    ["/organization/usage/completions", "start_time"],
    ["/organization/usage/completions?start_time=soon", "start_time"],
    [`/organization/usage/completions?start_time=${T0}&start_time=${T0}`, "start_time"],
    [`/organization/usage/completions?start_time=${T0}&end_time=${T0}`, "end_time"],
    [`/organization/usage/completions?start_time=${T0 + 86_400}`, "start_time"],
    [`/organization/usage/completions?start_time=${T0}&bucket_width=2d`, "bucket_width"],
    [`/organization/usage/completions?start_time=${T0}&limit=0`, "limit"],
    [`/organization/usage/completions?start_time=${T0}&limit=32`, "limit"],
    [`/organization/usage/completions?start_time=${T0}&bucket_width=1h&limit=169`, "limit"],
    [`/organization/usage/completions?start_time=${T0}&bucket_width=1m&limit=1441`, "limit"],
    [`/organization/usage/completions?start_time=${T0}&group_by[]=line_item`, "group_by[0]"],
    [`/organization/usage/completions?start_time=${T0}&batch=maybe`, "batch"],
    [`/organization/usage/completions?start_time=${T0}&page=page_nonsense`, "page"],
    [`/organization/usage/completions?start_time=${T0}&project_ids[]=`, "project_ids[0]"],
    [`/organization/usage/completions?start_time=${T0}&tenant=x`, "tenant"],
    [`/organization/usage/completions?start_time=${T0}&models=a&models[]=b`, "models"],
    [`/organization/usage/embeddings?start_time=${T0}&batch=true`, "batch"],
    [`/organization/usage/embeddings?start_time=${T0}&group_by[]=service_tier`, "group_by[0]"],
    [`/organization/usage/audio_transcriptions?start_time=${T0}&group_by=batch`, "group_by[0]"],
    [`/organization/costs?start_time=${T0}&bucket_width=1h`, "bucket_width"],
    [`/organization/costs?start_time=${T0}&limit=181`, "limit"],
    [`/organization/costs?start_time=${T0}&group_by[]=model`, "group_by[0]"],
    [`/organization/costs?start_time=${T0}&user_ids[]=alice`, "user_ids[]"],
    [`/organization/costs?start_time=${T0}&models[]=tiny-chat`, "models[]"],
  ];
  for (const [path, param] of cases) {
    const response = await rawRequest(stack, path, { apiKey: stack.adminKey });
    t.equal(response.status, 400, `${path}: ${response.text.slice(0, 200)}`);
    t.match(response.json, { error: { type: "invalid_request_error", param } }, `${path} names ${param}`);
  }
  const valid = await rawRequest(stack, `/organization/costs?start_time=${T0}&limit=180`, {
    apiKey: stack.adminKey,
  });
  t.equal(valid.status, 200, "costs take up to 180 buckets");
  const wrongKey = await rawRequest(stack, `/organization/usage/completions?start_time=${T0}`);
  t.equal(wrongKey.status, 403, "a project API key is refused");
});
