import t from "tap";
import { PlatformError, type ApiKeyPrincipal, type Principal, type RequestLimits } from "@llmaas/contracts";
import { KeyCache, type KeyCacheOptions } from "../src/auth/key-cache.js";

/** A clock the tests move by hand: nothing here waits for real time. */
function clock(start = 1_000_000) {
  let current = start;
  return {
    now: () => current,
    set: (ms: number) => {
      current = ms;
    },
    advance: (ms: number) => {
      current += ms;
    },
  };
}

function cacheWith(options: Partial<KeyCacheOptions> = {}) {
  const time = clock();
  const cache = new KeyCache({ ttlMs: 60_000, maxEntries: 100, now: time.now, ...options });
  return { cache, time };
}

const NO_LIMITS: RequestLimits = {
  key: { maxRequestsPer1Minute: null, maxTokensPer1Minute: null, tokenBudget: null },
  projectModels: {},
  projectSpendLimitCents: null,
  organizationSpendLimitCents: null,
  projectModelPermissions: null,
};

function apiKey(
  keyId: string,
  projectId = "proj_a",
  organizationId = "org_a",
  validUntil: number | null = null,
): ApiKeyPrincipal {
  return {
    kind: "api_key",
    organizationId,
    projectId,
    keyId,
    serviceAccountId: `svc_acct_${keyId}`,
    allowedModels: null,
    validUntil,
    limits: NO_LIMITS,
    guardrail: { mode: "off", threshold: 0.5, onTimeout: "allow" },
  };
}

/** A `load` that answers `principal` and counts its calls. */
function loader(principal: Principal) {
  const counter = {
    calls: 0,
    load: () => {
      counter.calls++;
      return Promise.resolve(principal);
    },
  };
  return counter;
}

/** A `load` whose answer the test releases when it chooses, to hold a look-up in flight. */
function heldLoader(principal: Principal) {
  let release: () => void = () => undefined;
  const answered = new Promise<Principal>((resolve) => {
    release = () => resolve(principal);
  });
  const counter = {
    calls: 0,
    load: () => {
      counter.calls++;
      return answered;
    },
    release: () => release(),
  };
  return counter;
}

const actor = {
  type: "session" as const,
  session: { ip_address: "127.0.0.1" },
};

void t.test("a cached key is served without calling load again", async (t) => {
  const { cache } = cacheWith();
  const principal = apiKey("key_1");
  const counter = loader(principal);
  t.same(await cache.resolve("sk-lm-proj-one", counter.load), principal);
  t.same(await cache.resolve("sk-lm-proj-one", counter.load), principal);
  t.equal(counter.calls, 1, "load called once for two resolves");
  t.equal(cache.size, 1);
});

void t.test("another credential is a different entry", async (t) => {
  const { cache } = cacheWith();
  const first = loader(apiKey("key_1"));
  const second = loader(apiKey("key_2"));
  await cache.resolve("sk-lm-proj-one", first.load);
  t.same(await cache.resolve("sk-lm-proj-two", second.load), apiKey("key_2"));
  t.equal(second.calls, 1);
  t.equal(cache.size, 2);
});

void t.test("the TTL ends a cached key", async (t) => {
  const { cache, time } = cacheWith({ ttlMs: 1_000 });
  const counter = loader(apiKey("key_1"));
  await cache.resolve("cred", counter.load);
  time.advance(999);
  await cache.resolve("cred", counter.load);
  t.equal(counter.calls, 1, "still cached just before the TTL");
  time.advance(1);
  await cache.resolve("cred", counter.load);
  t.equal(counter.calls, 2, "loaded again once the TTL has passed");
});

void t.test("a validUntil earlier than the TTL ends the entry", async (t) => {
  const { cache, time } = cacheWith({ ttlMs: 60_000 });
  const validUntil = time.now() + 500;
  const counter = loader(apiKey("key_1", "proj_a", "org_a", validUntil));
  await cache.resolve("cred", counter.load);
  time.set(validUntil - 1);
  await cache.resolve("cred", counter.load);
  t.equal(counter.calls, 1, "still cached just before validUntil");
  time.set(validUntil);
  await cache.resolve("cred", counter.load);
  t.equal(counter.calls, 2, "loaded again at validUntil, long before the TTL");
});

void t.test("a validUntil later than the TTL does not extend it", async (t) => {
  const { cache, time } = cacheWith({ ttlMs: 1_000 });
  const counter = loader(apiKey("key_1", "proj_a", "org_a", time.now() + 3_600_000));
  await cache.resolve("cred", counter.load);
  time.advance(1_000);
  await cache.resolve("cred", counter.load);
  t.equal(counter.calls, 2);
});

void t.test("a principal whose validUntil has already passed is not stored", async (t) => {
  const { cache, time } = cacheWith();
  const past = loader(apiKey("key_past", "proj_a", "org_a", time.now() - 1));
  t.same(await cache.resolve("past", past.load), apiKey("key_past", "proj_a", "org_a", time.now() - 1));
  await cache.resolve("past", past.load);
  t.equal(past.calls, 2, "loaded on every resolve");
  const now = loader(apiKey("key_now", "proj_a", "org_a", time.now()));
  await cache.resolve("now", now.load);
  await cache.resolve("now", now.load);
  t.equal(now.calls, 2, "a validUntil of exactly now is not stored either");
  t.equal(cache.size, 0);
});

/** Four keys cached: two in proj_1 (org_1), one in proj_2 (org_1), one in proj_3 (org_2). */
async function populated() {
  const { cache } = cacheWith();
  const loaders = {
    a: loader(apiKey("key_a", "proj_1", "org_1")),
    b: loader(apiKey("key_b", "proj_1", "org_1")),
    c: loader(apiKey("key_c", "proj_2", "org_1")),
    d: loader(apiKey("key_d", "proj_3", "org_2")),
  };
  for (const [name, counter] of Object.entries(loaders)) await cache.resolve(`cred-${name}`, counter.load);
  /** Resolves every key again and answers which ones had to be loaded. */
  const reloaded = async () => {
    const before = Object.fromEntries(Object.entries(loaders).map(([name, c]) => [name, c.calls]));
    for (const [name, counter] of Object.entries(loaders)) await cache.resolve(`cred-${name}`, counter.load);
    return Object.entries(loaders)
      .filter(([name, c]) => c.calls !== before[name])
      .map(([name]) => name);
  };
  return { cache, reloaded };
}

void t.test("revoking a key drops that key only", async (t) => {
  const { cache, reloaded } = await populated();
  cache.revoke({ scope: "key", id: "key_b" });
  t.equal(cache.size, 3);
  t.same(await reloaded(), ["b"]);
});

void t.test("revoking a project drops that project's keys only", async (t) => {
  const { cache, reloaded } = await populated();
  cache.revoke({ scope: "project", id: "proj_1" });
  t.equal(cache.size, 2);
  t.same(await reloaded(), ["a", "b"]);
});

void t.test("revoking an organization drops its keys, in all of its projects, only", async (t) => {
  const { cache, reloaded } = await populated();
  cache.revoke({ scope: "organization", id: "org_1" });
  t.equal(cache.size, 1);
  t.same(await reloaded(), ["a", "b", "c"]);
});

void t.test("a revocation matches its own scope's field only", async (t) => {
  const { cache, reloaded } = await populated();
  cache.revoke({ scope: "key", id: "proj_1" });
  cache.revoke({ scope: "project", id: "org_1" });
  cache.revoke({ scope: "organization", id: "key_a" });
  t.equal(cache.size, 4);
  t.same(await reloaded(), []);
});

void t.test("clear() drops every entry", async (t) => {
  const { cache, reloaded } = await populated();
  cache.clear();
  t.equal(cache.size, 0);
  t.same(await reloaded(), ["a", "b", "c", "d"]);
});

void t.test("ttlMs: 0 never stores", async (t) => {
  const { cache } = cacheWith({ ttlMs: 0 });
  const counter = loader(apiKey("key_1"));
  await cache.resolve("cred", counter.load);
  await cache.resolve("cred", counter.load);
  t.equal(counter.calls, 2);
  t.equal(cache.size, 0);
});

void t.test("admin and operator principals are never stored", async (t) => {
  const principals: Principal[] = [
    {
      kind: "admin_key",
      organizationId: "org_a",
      role: "owner",
      id: "key_admin",
      actor: {
        type: "api_key",
        api_key: { id: "key_admin", type: "user", ip_address: "127.0.0.1" },
      },
    },
    { kind: "administrator", organizationId: "org_a", role: "reader", id: "user_1", actor },
    { kind: "operator", actor },
  ];
  for (const principal of principals) {
    const { cache } = cacheWith();
    const counter = loader(principal);
    t.same(await cache.resolve(`cred-${principal.kind}`, counter.load), principal);
    await cache.resolve(`cred-${principal.kind}`, counter.load);
    t.equal(counter.calls, 2, `${principal.kind} loaded on every resolve`);
    t.equal(cache.size, 0, `${principal.kind} not stored`);
  }
});

void t.test("a refusal is rethrown and not cached", async (t) => {
  const { cache } = cacheWith();
  let calls = 0;
  const refuse = () => {
    calls++;
    return Promise.reject(new PlatformError("invalid_api_key", "Incorrect API key provided."));
  };
  await t.rejects(cache.resolve("cred", refuse), { code: "invalid_api_key" });
  await t.rejects(cache.resolve("cred", refuse), { code: "invalid_api_key" });
  t.equal(calls, 2, "each resolve asked again");
  t.equal(cache.size, 0);
  // Nor does a refusal stay in flight: the next answer is loaded and kept.
  const counter = loader(apiKey("key_1"));
  t.same(await cache.resolve("cred", counter.load), apiKey("key_1"));
  t.equal(counter.calls, 1);
  t.equal(cache.size, 1);
});

void t.test("concurrent resolves of one credential share one load", async (t) => {
  const { cache } = cacheWith();
  const held = heldLoader(apiKey("key_1"));
  const first = cache.resolve("cred", held.load);
  const second = cache.resolve("cred", held.load);
  const third = cache.resolve("cred", held.load);
  t.equal(held.calls, 1, "one load for three resolves");
  held.release();
  t.same(await Promise.all([first, second, third]), [apiKey("key_1"), apiKey("key_1"), apiKey("key_1")]);
  t.equal(held.calls, 1);
  t.equal(cache.size, 1);
});

void t.test("concurrent resolves share a refusal too, and the next resolve loads anew", async (t) => {
  const { cache } = cacheWith();
  let reject: (error: Error) => void = () => undefined;
  let calls = 0;
  const load = () => {
    calls++;
    return new Promise<Principal>((_resolve, fail) => {
      reject = fail;
    });
  };
  const first = cache.resolve("cred", load);
  const second = cache.resolve("cred", load);
  reject(new PlatformError("invalid_api_key", "Incorrect API key provided."));
  await t.rejects(first, { code: "invalid_api_key" });
  await t.rejects(second, { code: "invalid_api_key" });
  t.equal(calls, 1);
  const counter = loader(apiKey("key_1"));
  await cache.resolve("cred", counter.load);
  t.equal(counter.calls, 1);
});

void t.test("a load in flight when a revocation arrives is not stored", async (t) => {
  const { cache } = cacheWith();
  const held = heldLoader(apiKey("key_1"));
  const inFlight = cache.resolve("cred", held.load);
  cache.revoke({ scope: "key", id: "key_1" });
  held.release();
  t.same(await inFlight, apiKey("key_1"), "the caller still gets its answer");
  t.equal(cache.size, 0, "but it is not kept");
  const after = loader(apiKey("key_1"));
  await cache.resolve("cred", after.load);
  t.equal(after.calls, 1, "the next resolve calls load again");
});

void t.test("a revocation of another scope also keeps an in-flight load out of the cache", async (t) => {
  // The cache cannot tell what the load will answer, so any revocation makes it distrust loads begun before it.
  const { cache } = cacheWith();
  const held = heldLoader(apiKey("key_1", "proj_1", "org_1"));
  const inFlight = cache.resolve("cred", held.load);
  cache.revoke({ scope: "organization", id: "org_other" });
  held.release();
  await inFlight;
  t.equal(cache.size, 0);
});

void t.test("a load in flight across clear() is not stored", async (t) => {
  const { cache } = cacheWith();
  const held = heldLoader(apiKey("key_1"));
  const inFlight = cache.resolve("cred", held.load);
  cache.clear();
  held.release();
  await inFlight;
  t.equal(cache.size, 0);
});

void t.test("a resolve that starts after a revocation does not join the older load", async (t) => {
  const { cache } = cacheWith();
  const old = heldLoader(apiKey("key_1"));
  const before = cache.resolve("cred", old.load);
  cache.revoke({ scope: "key", id: "key_1" });
  const fresh = heldLoader(apiKey("key_1", "proj_a", "org_a", null));
  const after = cache.resolve("cred", fresh.load);
  t.equal(fresh.calls, 1, "the later resolve calls load anew");
  t.equal(old.calls, 1);
  // The older load ending first must not take the newer one's place as the credential's load in flight.
  old.release();
  await before;
  const joined = cache.resolve("cred", fresh.load);
  t.equal(fresh.calls, 1, "a third resolve joins the newer load");
  fresh.release();
  await Promise.all([after, joined]);
  t.equal(cache.size, 1, "the load begun after the revocation is stored");
  await cache.resolve("cred", fresh.load);
  t.equal(fresh.calls, 1);
});

void t.test("maxEntries evicts the oldest entry", async (t) => {
  const { cache } = cacheWith({ maxEntries: 2 });
  const a = loader(apiKey("key_a"));
  const b = loader(apiKey("key_b"));
  const c = loader(apiKey("key_c"));
  await cache.resolve("cred-a", a.load);
  await cache.resolve("cred-b", b.load);
  await cache.resolve("cred-c", c.load);
  t.equal(cache.size, 2);
  await cache.resolve("cred-c", c.load);
  await cache.resolve("cred-b", b.load);
  t.equal(b.calls + c.calls, 2, "the two newest are still cached");
  await cache.resolve("cred-a", a.load);
  t.equal(a.calls, 2, "the oldest was evicted");
});

void t.test("the cache keys entries by a hash, never by the credential", async (t) => {
  const { cache } = cacheWith();
  const secret = "sk-lm-proj-super-secret-value";
  await cache.resolve(secret, loader(apiKey("key_1")).load);
  const entries = (cache as unknown as { entries: Map<string, unknown> }).entries;
  t.equal(entries.size, 1);
  t.notOk([...entries.keys()].some((key) => key.includes(secret)));
});
