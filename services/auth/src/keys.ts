import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import type { Kysely } from "kysely";
import type { Database } from "@llmaas/db";
import { PlatformError, type AuthPrincipal } from "@llmaas/contracts";

const KEY_PREFIX = "sk-lm-";
const KEY_PATTERN = /^sk-lm-([a-z0-9]{12})-([0-9a-f]{48})$/;

export interface CreatedKey {
  id: string;
  tenantId: string;
  name: string;
  /** Shown once, at creation; only its keyed hash is stored. */
  apiKey: string;
}

function randomId(): string {
  const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
  return Array.from(randomBytes(12), (byte) => alphabet[byte % alphabet.length]).join("");
}

export class KeyStore {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly secret: string,
  ) {}

  private hash(apiKey: string): Buffer {
    return createHmac("sha256", this.secret).update(apiKey).digest();
  }

  async create(tenantId: string, name: string): Promise<CreatedKey> {
    const id = randomId();
    const apiKey = `${KEY_PREFIX}${id}-${randomBytes(24).toString("hex")}`;
    await this.db
      .insertInto("api_keys")
      .values({ id, tenant_id: tenantId, name, secret_hash: this.hash(apiKey), revoked_at: null })
      .execute();
    return { id, tenantId, name, apiKey };
  }

  /** The key's principal, or `invalid_api_key` for anything malformed, unknown, revoked or not matching. */
  async verify(apiKey: string): Promise<AuthPrincipal> {
    const match = KEY_PATTERN.exec(apiKey);
    const invalid = new PlatformError("invalid_api_key", "Incorrect API key provided.");
    if (!match) throw invalid;
    const row = await this.db
      .selectFrom("api_keys")
      .select(["id", "tenant_id", "secret_hash", "revoked_at"])
      .where("id", "=", match[1] as string)
      .executeTakeFirst();
    if (!row || row.revoked_at !== null) throw invalid;
    if (!timingSafeEqual(row.secret_hash, this.hash(apiKey))) throw invalid;
    return { keyId: row.id, tenantId: row.tenant_id };
  }
}
