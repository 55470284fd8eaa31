import { randomBytes } from "node:crypto";

const CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz";
const TIME_CHARS = 10;
const RANDOM_CHARS = 16;
const RANDOM_MAX = 1n << 80n;

let lastTime = 0;
let lastRandom = 0n;

function base32(value: bigint, length: number): string {
  let text = "";
  for (let i = 0; i < length; i++) {
    text = CROCKFORD[Number(value & 31n)] + text;
    value >>= 5n;
  }
  return text;
}

/**
 * `<prefix><time><random>`, ULID-style: ids sort in creation order, so OpenAI's cursor pagination (`after` = the
 * last id seen) is a plain comparison on the primary key. Within one millisecond the random part counts up, so two
 * ids made by one process never tie or go backwards.
 */
export function newId(prefix: string): string {
  const now = Date.now();
  if (now <= lastTime) {
    lastRandom = (lastRandom + 1n) % RANDOM_MAX;
  } else {
    lastTime = now;
    lastRandom = BigInt(`0x${randomBytes(10).toString("hex")}`);
  }
  return `${prefix}${base32(BigInt(lastTime), TIME_CHARS)}${base32(lastRandom, RANDOM_CHARS)}`;
}

export const ID_PREFIX = {
  organization: "org_",
  project: "proj_",
  serviceAccount: "svc_acct_",
  apiKey: "key_",
  adminKey: "key_",
  administrator: "user_",
  auditLog: "audit_log-",
} as const;
