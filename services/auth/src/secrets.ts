import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto";

/**
 * Our own prefixes, never OpenAI's `sk-` + `proj-`/`admin-`: secret scanners report OpenAI-looking keys found in
 * public code to OpenAI, who cannot revoke ours. Keys made before organizations read `sk-lm-<id>-<hex>` and still
 * verify: a secret is looked up by its keyed hash, whatever its shape.
 */
export const API_KEY_PREFIX = "sk-lm-proj-";
export const ADMIN_KEY_PREFIX = "sk-lm-admin-";
const ANY_KEY_PREFIX = "sk-lm-";

export type CredentialKind = "api_key" | "admin_key" | "oidc_token" | "other";

const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

export function credentialKind(credential: string): CredentialKind {
  if (credential.startsWith(ADMIN_KEY_PREFIX)) return "admin_key";
  if (credential.startsWith(ANY_KEY_PREFIX)) return "api_key";
  if (JWT_SHAPE.test(credential)) return "oidc_token";
  return "other";
}

export interface NewSecret {
  /** Shown once, in the answer that creates it. */
  value: string;
  /** Enough to recognise the key in a list: the prefix, the first and the last four characters. */
  redacted: string;
}

/** 256 random bits after the prefix. */
export function newSecret(prefix: string): NewSecret {
  const random = randomBytes(32).toString("base64url");
  return { value: `${prefix}${random}`, redacted: `${prefix}${random.slice(0, 4)}...${random.slice(-4)}` };
}

/**
 * Secrets are stored as HMAC-SHA256 under the server key, so a copy of the database alone can neither be used nor
 * brute-forced. The hash is also the lookup key: a secret carries no id an attacker could aim at.
 */
export class SecretHasher {
  constructor(private readonly serverKey: string) {}

  hash(secret: string): Buffer {
    return createHmac("sha256", this.serverKey).update(secret).digest();
  }
}

/**
 * The operator's token, configured as itself or as its SHA-256 (hex), so the configuration need not hold it in clear.
 * Compared in constant time.
 */
export class OperatorToken {
  private readonly digest: Buffer | null;

  constructor(config: { token?: string | undefined; sha256?: string | undefined }) {
    if (config.sha256) this.digest = Buffer.from(config.sha256, "hex");
    else if (config.token) this.digest = sha256(config.token);
    else this.digest = null;
  }

  matches(credential: string): boolean {
    return this.digest !== null && timingSafeEqual(this.digest, sha256(credential));
  }
}

function sha256(text: string): Buffer {
  return createHash("sha256").update(text).digest();
}
