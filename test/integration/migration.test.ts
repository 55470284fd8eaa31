// Migration 0002 (organizations) on a database that holds what the platform held before it: every legacy key keeps
// working under the same string, in a project of its former tenant, usage follows its keys, and `down` gives the
// legacy shape back. Then 0003 (metering): the new aggregates hold the same totals, and `down` gives 0002's back.
// Then 0004 (limits): existing keys and projects have no limits, the new settings are checked, and `down` drops them.
import t from "tap";
import { createHash, createHmac, randomBytes } from "node:crypto";
import pg from "pg";
import { sql, type ColumnType, type Kysely } from "kysely";
import { startAuth } from "@llmaas/auth/app";
import { parseCatalogue } from "@llmaas/catalogue";
import { authAuthenticate, type Principal } from "@llmaas/contracts";
import { createDatabase, createMigrator, migrateDown, type Database } from "@llmaas/db";
import { connectTestBus, silentLogger } from "../support/bus.js";
import { testEnv } from "../support/env.js";

/** The tables as migration 0001 made them. */
interface LegacyDatabase {
  api_keys: {
    id: string;
    tenant_id: string;
    name: string;
    secret_hash: Buffer;
    created_at: Date | string;
    revoked_at: Date | string | null;
  };
  usage_events: {
    request_id: string;
    tenant_id: string;
    key_id: string;
    end_user: string | null;
    model: string;
    operation: string;
    prompt_tokens: number;
    completion_tokens: number;
    status: string;
    served_by: string;
    started_at: Date | string;
    finished_at: Date | string;
  };
  usage_hourly: {
    hour: Date | string;
    tenant_id: string;
    key_id: string;
    model: string;
    requests: ColumnType<string, number, number>;
    prompt_tokens: ColumnType<string, number, number>;
    completion_tokens: ColumnType<string, number, number>;
  };
}

/** usage_hourly as migration 0002 made it (0003 replaces it). */
interface Database0002 extends Omit<Database, "usage_hourly"> {
  usage_hourly: {
    hour: Date | string;
    organization_id: string;
    project_id: string;
    key_id: string;
    model: string;
    requests: string;
    prompt_tokens: string;
    completion_tokens: string;
  };
}

const SERVER_KEY = `test-server-key-${randomBytes(8).toString("hex")}`;
const DEFAULT_ORGANIZATION = "org_default";

const md5 = (text: string) => createHash("md5").update(text).digest("hex");
/** As the migration (and metering, for version-1 events) derive them from the tenant's name. */
const projectOf = (tenant: string) => `proj_${md5(tenant).slice(0, 24)}`;
const serviceAccountOf = (tenant: string) => `svc_acct_${md5(tenant).slice(0, 24)}`;
const hmac = (secret: string) => createHmac("sha256", SERVER_KEY).update(secret).digest();

// ---------------------------------------------------------------------------------------------------------------
// A database of its own, migrated to 0001 only.

async function admin<T>(run: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: testEnv.TEST_POSTGRES_URL });
  await client.connect();
  try {
    return await run(client);
  } finally {
    await client.end();
  }
}

const databaseName = `llmaas_test_${randomBytes(6).toString("hex")}`;
await admin((client) => client.query(`CREATE DATABASE ${databaseName}`));
const url = new URL(testEnv.TEST_POSTGRES_URL);
url.pathname = `/${databaseName}`;
// A session time zone other than UTC: the hourly buckets must still be UTC hours.
url.searchParams.set("options", "-c timezone=America/St_Johns");
// Dropping the database ends the backends of connections that are still closing; that is expected here.
const db = createDatabase<Database>({ url: url.href, poolSize: 4, onConnectionError: () => undefined });
t.teardown(async () => {
  await db.destroy();
  await admin((client) => client.query(`DROP DATABASE IF EXISTS ${databaseName} WITH (FORCE)`));
});
const legacy = db as unknown as Kysely<LegacyDatabase>;
const at0002 = db as unknown as Kysely<Database0002>;

{
  const result = await createMigrator(db).migrateTo("0001_initial");
  if (result.error) throw new Error("migration to 0001_initial failed", { cause: result.error });
}

// ---------------------------------------------------------------------------------------------------------------
// Legacy data: two tenants with keys (one of them revoked), a third tenant with usage but no key left.

/** A key as the code before organizations made it: `sk-lm-<12 [a-z0-9]>-<48 hex>`, id = the 12 characters. */
function legacyKey(tenant: string, name: string, createdAt: string, revokedAt: string | null = null) {
  const id = randomBytes(6).toString("hex");
  const value = `sk-lm-${id}-${randomBytes(24).toString("hex")}`;
  return {
    id,
    value,
    row: {
      id,
      tenant_id: tenant,
      name,
      secret_hash: hmac(value),
      created_at: createdAt,
      revoked_at: revokedAt,
    },
  };
}

const ACME = "acme";
const GLOBEX = "globex";
const INITECH = "initech-zürich"; // keyless; not ASCII, so Postgres' md5 and Node's must agree on UTF-8

const acmeKey = legacyKey(ACME, "acme production", "2025-03-01T09:00:00.000Z");
const acmeRevoked = legacyKey(ACME, "acme leaked", "2025-02-01T09:00:00.000Z", "2025-06-01T12:00:00.000Z");
const globexKey = legacyKey(GLOBEX, "globex", "2025-04-15T18:30:00.000Z");
const legacyKeys = [acmeKey, acmeRevoked, globexKey];
const initechGoneKey = "a1b2c3d4e5f6";

type LegacyEvent = LegacyDatabase["usage_events"] & { started_at: string; finished_at: string };
let requestCounter = 0;
function event(
  tenant: string,
  keyId: string,
  finishedAt: string,
  prompt: number,
  completion: number,
  model = "tiny-chat",
): LegacyEvent {
  const finished = new Date(finishedAt);
  return {
    request_id: `chatcmpl-legacy-${++requestCounter}`,
    tenant_id: tenant,
    key_id: keyId,
    end_user: null,
    model,
    operation: "chat.completions",
    prompt_tokens: prompt,
    completion_tokens: completion,
    status: "completed",
    served_by: "worker-1",
    started_at: new Date(finished.getTime() - 1500).toISOString(),
    finished_at: finished.toISOString(),
  };
}

const legacyEvents: LegacyEvent[] = [
  event(ACME, acmeKey.id, "2025-06-10T10:05:00.000Z", 10, 5),
  event(ACME, acmeKey.id, "2025-06-10T10:59:59.999Z", 7, 3),
  event(ACME, acmeKey.id, "2025-06-10T11:00:00.000Z", 1, 1),
  event(ACME, acmeKey.id, "2025-06-10T10:20:00.000Z", 4, 4, "tiny-embed"),
  event(ACME, acmeRevoked.id, "2025-05-31T23:30:00.000Z", 100, 50),
  event(GLOBEX, globexKey.id, "2025-06-10T10:15:00.000Z", 20, 10),
  event(GLOBEX, globexKey.id, "2025-06-10T10:45:00.000Z", 2, 2),
  event(INITECH, initechGoneKey, "2025-01-05T08:00:00.000Z", 30, 0),
  event(INITECH, initechGoneKey, "2025-01-05T08:10:00.000Z", 3, 3),
];
const tenantOfRequest = new Map(legacyEvents.map((e) => [e.request_id, e.tenant_id]));

const hourOf = (time: Date | string) => {
  const ms = new Date(time).getTime();
  return new Date(ms - (((ms % 3_600_000) + 3_600_000) % 3_600_000)).toISOString();
};

/** The hourly rows `events` fold into, grouped by `owner`, as comparable strings. */
function aggregate<
  E extends {
    finished_at: Date | string;
    key_id: string;
    model: string;
    prompt_tokens: number;
    completion_tokens: number;
  },
>(events: E[], owner: (event: E) => string[]): string[] {
  const rows = new Map<string, { requests: number; prompt: number; completion: number }>();
  for (const e of events) {
    const group = [hourOf(e.finished_at), ...owner(e), e.key_id, e.model].join(" ");
    const row = rows.get(group) ?? { requests: 0, prompt: 0, completion: 0 };
    row.requests += 1;
    row.prompt += e.prompt_tokens;
    row.completion += e.completion_tokens;
    rows.set(group, row);
  }
  return [...rows].map(([group, r]) => `${group} ${r.requests} ${r.prompt} ${r.completion}`).sort();
}

const hourlyRow = (
  owner: string[],
  row: {
    hour: Date | string;
    key_id: string;
    model: string;
    requests: string;
    prompt_tokens: string;
    completion_tokens: string;
  },
) =>
  [
    hourOf(row.hour),
    ...owner,
    row.key_id,
    row.model,
    row.requests,
    row.prompt_tokens,
    row.completion_tokens,
  ].join(" ");

await legacy
  .insertInto("api_keys")
  .values(legacyKeys.map((key) => key.row))
  .execute();
await legacy.insertInto("usage_events").values(legacyEvents).execute();
await legacy
  .insertInto("usage_hourly")
  .values(
    aggregate(legacyEvents, (e) => [e.tenant_id]).map((line) => {
      const [hour, tenant, key, model, requests, prompt, completion] = line.split(" ") as [
        string,
        string,
        string,
        string,
        string,
        string,
        string,
      ];
      return {
        hour,
        tenant_id: tenant,
        key_id: key,
        model,
        requests: Number(requests),
        prompt_tokens: Number(prompt),
        completion_tokens: Number(completion),
      };
    }),
  )
  .execute();

async function tableNames(): Promise<string[]> {
  const { rows } = await sql<{ table_name: string }>`
    select table_name from information_schema.tables where table_schema = 'public' and table_name not like 'kysely%'
    order by table_name`.execute(db);
  return rows.map((row) => row.table_name);
}

async function columnsOf(table: string): Promise<string[]> {
  const { rows } = await sql<{ column_name: string }>`
    select column_name from information_schema.columns where table_schema = 'public' and table_name = ${table}
    order by ordinal_position`.execute(db);
  return rows.map((row) => row.column_name);
}

// ---------------------------------------------------------------------------------------------------------------

void t.test("the database starts in the legacy shape", async (t) => {
  const { rows } = await sql<{ timezone: string }>`select current_setting('TimeZone') as timezone`.execute(
    db,
  );
  t.equal(rows[0]?.timezone, "America/St_Johns", "sessions are not in UTC");
  t.same(await tableNames(), ["api_keys", "usage_events", "usage_hourly"]);
  t.equal((await legacy.selectFrom("api_keys").select("id").execute()).length, 3);
});

void t.test("migrating to latest moves legacy keys and usage into organizations", async (t) => {
  const results = await createMigrator(db).migrateTo("0002_organizations");
  t.notOk(results.error, "the migration succeeds");
  t.same(
    results.results?.map((r) => [r.migrationName, r.direction, r.status]),
    [["0002_organizations", "Up", "Success"]],
  );

  await t.test("one organization, org_default", async (t) => {
    const organizations = await db.selectFrom("organizations").select(["id", "status"]).execute();
    t.same(organizations, [{ id: DEFAULT_ORGANIZATION, status: "active" }]);
  });

  await t.test("one project per former tenant, the keyless one included", async (t) => {
    const projects = await db
      .selectFrom("projects")
      .select(["id", "organization_id", "name", "status", "created_at"])
      .orderBy("name")
      .execute();
    t.same(
      projects.map((p) => [p.id, p.organization_id, p.name, p.status]),
      [ACME, GLOBEX, INITECH].map((tenant) => [projectOf(tenant), DEFAULT_ORGANIZATION, tenant, "active"]),
    );
    const createdAt = Object.fromEntries(projects.map((p) => [p.name, p.created_at.toISOString()]));
    t.same(
      createdAt,
      {
        [ACME]: "2025-02-01T09:00:00.000Z", // its oldest key
        [GLOBEX]: "2025-04-15T18:30:00.000Z",
        [INITECH]: "2025-01-05T07:59:58.500Z", // its first request
      },
      "a project is as old as its tenant's oldest key, or first request",
    );
  });

  await t.test("one service account per tenant that had keys", async (t) => {
    const accounts = await db
      .selectFrom("service_accounts")
      .select(["id", "organization_id", "project_id", "role", "deleted_at"])
      .orderBy("id")
      .execute();
    t.same(
      accounts,
      [ACME, GLOBEX]
        .map((tenant) => ({
          id: serviceAccountOf(tenant),
          organization_id: DEFAULT_ORGANIZATION,
          project_id: projectOf(tenant),
          role: "member",
          deleted_at: null,
        }))
        .sort((a, b) => a.id.localeCompare(b.id)),
    );
  });

  await t.test("each legacy key keeps its id, in its tenant's project", async (t) => {
    const keys = await db.selectFrom("api_keys").selectAll().execute();
    t.equal(keys.length, legacyKeys.length);
    for (const key of legacyKeys) {
      const row = keys.find((k) => k.id === key.id);
      t.ok(row, `key ${key.row.name} kept its id`);
      if (!row) continue;
      t.match(
        row,
        {
          organization_id: DEFAULT_ORGANIZATION,
          project_id: projectOf(key.row.tenant_id),
          service_account_id: serviceAccountOf(key.row.tenant_id),
          name: key.row.name,
          redacted_value: `sk-lm-${key.id}-...`,
          expires_at: null,
          allowed_models: null,
        },
        `key ${key.row.name} in its tenant's project`,
      );
      t.equal(
        row.created_at.toISOString(),
        key.row.created_at,
        `key ${key.row.name} keeps its creation time`,
      );
      t.notOk(
        row.redacted_value.includes(key.value.slice(19)),
        "the redacted value holds none of the secret",
      );
    }
  });

  await t.test("the revoked key is deleted", async (t) => {
    const revoked = await db
      .selectFrom("api_keys")
      .select("deleted_at")
      .where("id", "=", acmeRevoked.id)
      .executeTakeFirstOrThrow();
    t.equal(revoked.deleted_at?.toISOString(), "2025-06-01T12:00:00.000Z");
    const live = await db
      .selectFrom("api_keys")
      .select("id")
      .where("deleted_at", "is", null)
      .orderBy("id")
      .execute();
    t.same(
      live.map((k) => k.id),
      [acmeKey.id, globexKey.id].sort(),
    );
  });

  await t.test("each key's keyed hash moved to api_key_secrets unchanged", async (t) => {
    const secrets = await db.selectFrom("api_key_secrets").selectAll().execute();
    t.equal(secrets.length, legacyKeys.length);
    for (const key of legacyKeys) {
      const secret = secrets.find((s) => s.key_id === key.id);
      t.ok(secret && secret.secret_hash.equals(hmac(key.value)), `${key.row.name}: HMAC of the whole key`);
      t.equal(secret?.expires_at, null);
    }
  });

  await t.test("usage rows belong to org_default and their tenant's project", async (t) => {
    const events = await db.selectFrom("usage_events").selectAll().orderBy("request_id").execute();
    t.equal(events.length, legacyEvents.length, "no event lost or added");
    t.same(
      events.map((e) => [e.request_id, e.organization_id, e.project_id]),
      events.map((e) => [
        e.request_id,
        DEFAULT_ORGANIZATION,
        projectOf(tenantOfRequest.get(e.request_id) ?? "?"),
      ]),
    );
    t.same(await columnsOf("usage_events").then((c) => c.includes("tenant_id")), false, "tenant_id is gone");
  });

  await t.test("usage_hourly is the aggregate of usage_events", async (t) => {
    const events = await db.selectFrom("usage_events").selectAll().execute();
    const hourly = await at0002.selectFrom("usage_hourly").selectAll().execute();
    const actual = hourly.map((row) => hourlyRow([row.organization_id, row.project_id], row)).sort();
    t.same(
      actual,
      aggregate(events, (e) => [e.organization_id, e.project_id]),
    );
    // And the same totals the legacy aggregate had, tenant by tenant.
    t.same(
      actual,
      aggregate(legacyEvents, (e) => [DEFAULT_ORGANIZATION, projectOf(e.tenant_id)]),
    );
  });
});

/** The catalogue auth lists rate limits for, and the defaults every project has until it sets its own. */
const LIMIT_DEFAULTS = {
  maxRequestsPer1Minute: 600,
  maxTokensPer1Minute: 100_000,
  maxRequestsPer1Day: null,
  maxAudioMegabytesPer1Minute: null,
};
const GUARDRAIL_DEFAULT = { mode: "flag", threshold: 0.5, onTimeout: "allow" } as const;
const catalogue = parseCatalogue(
  `
models:
  - { id: tiny-chat, owned_by: llmaas, created: 2026-11-21, source: chat.gguf, capabilities: [chat], context_length: 512, pricing: {} }
  - { id: tiny-embed, owned_by: llmaas, created: 2026-11-21, source: embed.gguf, capabilities: [embeddings], context_length: 256, embeddings: { dimensions: 64 }, pricing: {} }
`,
  "/",
  "migration test catalogue",
);

void t.test("auth accepts the legacy key strings", async (t) => {
  // Auth reads today's schema; the database goes back to 0002 afterwards, for the tests of 0002's down.
  const latest = await createMigrator(db).migrateToLatest();
  t.notOk(latest.error, "migrating to latest succeeds");
  t.teardown(async () => {
    const back = await createMigrator(db).migrateTo("0002_organizations");
    if (back.error) throw new Error("migrating back to 0002 failed", { cause: back.error });
  });
  const { bus, close } = await connectTestBus();
  t.teardown(close);
  const auth = startAuth({
    bus,
    db,
    logger: silentLogger,
    keySecret: SERVER_KEY,
    operatorToken: {},
    oidc: { clockToleranceSeconds: 30, jwksCooldownMs: 1_000, jwksTimeoutMs: 1_000 },
    limits: { catalogue, defaults: LIMIT_DEFAULTS },
    guardrailDefault: GUARDRAIL_DEFAULT,
  });
  t.teardown(() => auth.stop());
  const authenticate = (credential: string): Promise<Principal> =>
    bus.request(
      authAuthenticate,
      authAuthenticate.subject,
      { credential, organizationHint: null, client: { ip: "127.0.0.1", userAgent: "migration-test" } },
      { timeoutMs: 5_000 },
    );

  for (const [key, tenant] of [
    [acmeKey, ACME],
    [globexKey, GLOBEX],
  ] as const) {
    t.same(
      await authenticate(key.value),
      {
        kind: "api_key",
        organizationId: DEFAULT_ORGANIZATION,
        projectId: projectOf(tenant),
        keyId: key.id,
        serviceAccountId: serviceAccountOf(tenant),
        allowedModels: null,
        validUntil: null,
        limits: {
          key: { maxRequestsPer1Minute: null, maxTokensPer1Minute: null, tokenBudget: null },
          projectModels: { "tiny-chat": LIMIT_DEFAULTS, "tiny-embed": LIMIT_DEFAULTS },
          projectSpendLimitCents: null,
          organizationSpendLimitCents: null,
          projectModelPermissions: null,
        },
        guardrail: GUARDRAIL_DEFAULT,
      },
      `${key.row.name} authenticates to its tenant's project, with no limits but the defaults`,
    );
  }
  await t.rejects(authenticate(acmeRevoked.value), { code: "invalid_api_key" }, "the revoked key is refused");
  await t.rejects(
    authenticate(`sk-lm-${acmeKey.id}-${randomBytes(24).toString("hex")}`),
    { code: "invalid_api_key" },
    "a known id with another secret is refused",
  );
  const otherServer = createHmac("sha256", "another-server-key").update(acmeKey.value).digest();
  t.notOk(otherServer.equals(hmac(acmeKey.value)), "the hash depends on the server key");
});

void t.test("the audit log is append-only in the database itself", async (t) => {
  await db
    .insertInto("audit_logs")
    .values({ id: "audit_log-migration-test", organization_id: DEFAULT_ORGANIZATION, type: "test.event" })
    .execute();
  await t.rejects(
    db
      .updateTable("audit_logs")
      .set({ type: "tampered" })
      .where("id", "=", "audit_log-migration-test")
      .execute(),
    { message: /append-only/ },
    "UPDATE fails",
  );
  await t.rejects(
    db.deleteFrom("audit_logs").where("id", "=", "audit_log-migration-test").execute(),
    { message: /append-only/ },
    "DELETE fails",
  );
  await t.rejects(sql`truncate audit_logs`.execute(db), { message: /append-only/ }, "TRUNCATE fails");
  const rows = await db.selectFrom("audit_logs").select(["id", "type"]).execute();
  t.same(rows, [{ id: "audit_log-migration-test", type: "test.event" }], "the row is still there, unchanged");
});

void t.test("migrating down one step gives the legacy shape back", async (t) => {
  await migrateDown(db);
  t.same(await tableNames(), ["api_keys", "usage_events", "usage_hourly"], "only the legacy tables are left");
  const applied = await createMigrator(db).getMigrations();
  t.same(
    applied.map((m) => [m.name, m.executedAt !== undefined]),
    applied.map((m) => [m.name, m.name === "0001_initial"]),
    "only 0001 is applied",
  );
  t.same(await columnsOf("api_keys"), ["id", "tenant_id", "name", "secret_hash", "created_at", "revoked_at"]);
  t.same(await columnsOf("usage_events").then((c) => [c.includes("tenant_id"), c.includes("project_id")]), [
    true,
    false,
  ]);
  t.same(await columnsOf("usage_hourly"), [
    "hour",
    "tenant_id",
    "key_id",
    "model",
    "requests",
    "prompt_tokens",
    "completion_tokens",
  ]);

  const keys = await legacy.selectFrom("api_keys").selectAll().execute();
  t.equal(keys.length, legacyKeys.length);
  for (const key of legacyKeys) {
    const row = keys.find((k) => k.id === key.id);
    t.ok(row && row.secret_hash.equals(hmac(key.value)), `${key.row.name}: its hash is intact`);
    t.equal(row?.name, key.row.name);
    t.equal(row?.tenant_id, key.row.tenant_id, `${key.row.name}: back in its own tenant`);
    t.equal(
      row?.revoked_at === null ? null : new Date(row?.revoked_at ?? 0).toISOString(),
      key.row.revoked_at,
      `${key.row.name}: revoked_at`,
    );
  }

  const events = await legacy.selectFrom("usage_events").selectAll().execute();
  t.equal(events.length, legacyEvents.length);
  t.ok(
    events.every((e) => e.tenant_id === tenantOfRequest.get(e.request_id)),
    "every usage row is back in its own tenant",
  );
  const hourly = await legacy.selectFrom("usage_hourly").selectAll().execute();
  t.same(
    hourly.map((row) => hourlyRow([row.tenant_id], row)).sort(),
    aggregate(legacyEvents, (e) => [e.tenant_id]),
    "usage_hourly is rebuilt, with the totals it had before the migration",
  );
});

void t.test(
  "0003 folds the usage into minute, hour and day aggregates, and down gives 0002's back",
  async (t) => {
    const up = await createMigrator(db).migrateTo("0003_metering");
    t.notOk(up.error, "migrating to 0003 succeeds");
    const events = await db.selectFrom("usage_events").selectAll().execute();
    t.ok(events.length > 0, "there is usage to fold");
    t.ok(
      events.every(
        (event) => event.currency === null && event.input_cost_pico === "0" && event.audio_seconds === 0,
      ),
      "events from before prices cost nothing and name no currency",
    );
    for (const table of ["usage_minute", "usage_hourly", "usage_daily"] as const) {
      const rows = await db.selectFrom(table).selectAll().execute();
      const sum = (pick: (row: (typeof rows)[number]) => string) =>
        rows.reduce((n, row) => n + Number(pick(row)), 0);
      t.same(
        [sum((row) => row.requests), sum((row) => row.input_tokens), sum((row) => row.output_tokens)],
        [
          events.length,
          events.reduce((n, event) => n + event.prompt_tokens, 0),
          events.reduce((n, event) => n + event.completion_tokens, 0),
        ],
        `${table} holds the events' totals`,
      );
    }
    const hourlyAfterUp = await db.selectFrom("usage_hourly").selectAll().execute();
    t.same(
      hourlyAfterUp
        .map((row) => [row.end_user === "" || events.some((e) => e.end_user === row.end_user)])
        .flat(),
      hourlyAfterUp.map(() => true),
      "end users are kept, '' standing for none",
    );

    const down = await createMigrator(db).migrateTo("0002_organizations");
    t.notOk(down.error, "migrating back to 0002 succeeds");
    const hourly = await at0002.selectFrom("usage_hourly").selectAll().execute();
    t.same(
      hourly.map((row) => hourlyRow([row.organization_id, row.project_id], row)).sort(),
      aggregate(events, (e) => [e.organization_id, e.project_id]),
      "0002's usage_hourly is rebuilt from the hourly aggregate",
    );
    t.same(
      await columnsOf("usage_events").then((c) => c.includes("input_cost_pico")),
      false,
      "prices are gone",
    );
  },
);

void t.test(
  "0004 adds limits that existing keys and projects do not have, and down drops them",
  async (t) => {
    const up = await createMigrator(db).migrateTo("0004_limits");
    t.notOk(up.error, "migrating to 0004 succeeds");
    const keys = await db
      .selectFrom("api_keys")
      .select([
        "id",
        "max_requests_per_1_minute",
        "max_tokens_per_1_minute",
        "token_budget_limit",
        "token_budget_interval",
      ])
      .execute();
    t.equal(keys.length, legacyKeys.length, "every key is kept");
    t.ok(
      keys.every(
        (key) =>
          key.max_requests_per_1_minute === null &&
          key.max_tokens_per_1_minute === null &&
          key.token_budget_limit === null &&
          key.token_budget_interval === null,
      ),
      "no key has limits of its own",
    );
    for (const table of [
      "project_rate_limits",
      "project_model_permissions",
      "project_spend_limits",
      "organization_spend_limits",
    ] as const) {
      t.same(await db.selectFrom(table).selectAll().execute(), [], `${table} starts empty`);
    }

    const project = projectOf(ACME);
    await db
      .insertInto("project_rate_limits")
      .values({ project_id: project, model: "tiny-chat", max_requests_per_1_day: 5_000_000_000 })
      .execute();
    const [stored] = await db.selectFrom("project_rate_limits").selectAll().execute();
    t.match(
      stored,
      { max_requests_per_1_minute: null, max_requests_per_1_day: "5000000000" },
      "limits past 2^31 are kept exactly; what is not set stays null (the default)",
    );
    await t.rejects(
      db
        .insertInto("project_rate_limits")
        .values({ project_id: project, model: "tiny-embed", max_tokens_per_1_minute: 0 })
        .execute(),
      /check constraint/,
      "a limit of 0 is refused by the database too",
    );
    await t.rejects(
      db.updateTable("api_keys").set({ token_budget_limit: 1000 }).where("id", "=", acmeKey.id).execute(),
      /api_keys_token_budget_check/,
      "a token budget without its interval is refused",
    );
    await db
      .insertInto("project_model_permissions")
      .values({ project_id: project, mode: "allow_list", model_ids: ["chat-default"] })
      .execute();
    await t.rejects(
      db
        .insertInto("project_model_permissions")
        .values({ project_id: "proj_missing", mode: "deny_list", model_ids: [] })
        .execute(),
      /foreign key/,
      "settings belong to a project that exists",
    );
    await db
      .insertInto("organization_spend_limits")
      .values({ organization_id: DEFAULT_ORGANIZATION, threshold_amount: 10_000, currency: "EUR" })
      .execute();

    const down = await createMigrator(db).migrateTo("0003_metering");
    t.notOk(down.error, "migrating back to 0003 succeeds");
    const tables = await tableNames();
    t.same(
      tables.filter((table) => table.includes("limit") || table.includes("permission")),
      [],
      "the limits' tables are gone",
    );
    const columns = await columnsOf("api_keys");
    t.notOk(
      columns.some((column) => column.startsWith("max_") || column.startsWith("token_budget")),
      "the keys' limit columns are gone",
    );
    t.equal(
      (await db.selectFrom("api_keys").select("id").execute()).length,
      legacyKeys.length,
      "and the keys are kept",
    );
  },
);
