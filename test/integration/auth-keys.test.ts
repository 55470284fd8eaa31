import t from "tap";
import { KeyStore } from "@llmaas/auth/keys";
import { PlatformError } from "@llmaas/contracts";
import { createTestDatabase } from "../support/database.js";

const database = await createTestDatabase();
t.teardown(() => database.drop());
const keys = new KeyStore(database.db, "a-server-secret-of-at-least-32-chars!!");

async function rejection(promise: Promise<unknown>): Promise<string | undefined> {
  return promise.then(
    () => undefined,
    (error: unknown) => (error instanceof PlatformError ? error.code : String(error)),
  );
}

void t.test("a created key verifies to its principal; only its keyed hash is stored", async (t) => {
  const created = await keys.create("tenant-1", "ci");
  t.match(created.apiKey, /^sk-lm-[a-z0-9]{12}-[0-9a-f]{48}$/);
  t.same(await keys.verify(created.apiKey), { keyId: created.id, tenantId: "tenant-1" });
  const row = await database.db
    .selectFrom("api_keys")
    .selectAll()
    .where("id", "=", created.id)
    .executeTakeFirstOrThrow();
  t.equal(row.secret_hash.length, 32, "an HMAC-SHA256 digest");
  t.notOk(
    row.secret_hash.toString("latin1").includes(created.apiKey.slice(19)),
    "the secret part is not stored",
  );
});

void t.test("wrong, malformed, unknown and revoked keys are refused alike", async (t) => {
  const created = await keys.create("tenant-1", "victim");
  const flipped = created.apiKey.slice(0, -1) + (created.apiKey.endsWith("a") ? "b" : "a");
  t.equal(await rejection(keys.verify(flipped)), "invalid_api_key");
  t.equal(await rejection(keys.verify("sk-lm-zzzzzzzzzzzz-" + "0".repeat(48))), "invalid_api_key");
  t.equal(await rejection(keys.verify("Bearer nonsense")), "invalid_api_key");
  const otherSecret = new KeyStore(database.db, "another-server-secret-of-32-chars!!!!");
  t.equal(await rejection(otherSecret.verify(created.apiKey)), "invalid_api_key", "the hash is keyed");
  await database.db
    .updateTable("api_keys")
    .set({ revoked_at: new Date() })
    .where("id", "=", created.id)
    .execute();
  t.equal(await rejection(keys.verify(created.apiKey)), "invalid_api_key");
});
