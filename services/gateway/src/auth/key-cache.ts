import { createHash } from "node:crypto";
import type { ApiKeyPrincipal, CredentialsRevoked, Principal } from "@llmaas/contracts";

interface Entry {
  principal: ApiKeyPrincipal;
  /** Unix ms: the cache's own backstop, or the secret's end (rotation, expiry) if sooner. */
  expiresAt: number;
}

export interface KeyCacheOptions {
  /** How long a verified key is trusted without asking `auth` again; 0 asks every time. */
  ttlMs: number;
  maxEntries: number;
  now?: () => number;
}

/**
 * Verified API keys, so that the inference hot path makes no round trip to `auth` (and so none to Postgres) per
 * request. A key stops being accepted, on every gateway:
 * - at once when `auth` broadcasts a revocation of its key, project or organization;
 * - when its secret's grace period or the key's expiry passes, which the cached principal carries;
 * - after the TTL at the latest, should a revocation be lost;
 * - and every entry goes when the gateway reconnects to NATS, since revocations sent meanwhile never reached it.
 *
 * Entries are keyed by a SHA-256 of the secret, so the secrets themselves are not kept in memory longer than a
 * request. Only API keys are cached: admin credentials are verified on each request, which also audits sign-ins.
 */
export class KeyCache {
  private readonly entries = new Map<string, Entry>();
  private readonly pending = new Map<string, Promise<Principal>>();
  /** Moves on every revocation: a look-up that raced one must not store what it read before it. */
  private generation = 0;
  private readonly now: () => number;

  constructor(private readonly options: KeyCacheOptions) {
    this.now = options.now ?? Date.now;
  }

  get size(): number {
    return this.entries.size;
  }

  /**
   * The credential's principal, from the cache or from `load` (one load at a time per credential, however many
   * requests arrive with it). Refusals are not cached: they cost the caller a round trip, not us memory.
   */
  async resolve(credential: string, load: () => Promise<Principal>): Promise<Principal> {
    const hash = createHash("sha256").update(credential).digest("base64url");
    const cached = this.entries.get(hash);
    if (cached) {
      if (this.now() < cached.expiresAt) return cached.principal;
      this.entries.delete(hash);
    }
    const inFlight = this.pending.get(hash);
    if (inFlight) return inFlight;
    const generation = this.generation;
    // Stored before the load stops being the pending one, so that no resolve falls between the two and loads again.
    const loading: Promise<Principal> = load()
      .then((principal) => {
        if (principal.kind === "api_key" && this.options.ttlMs > 0 && generation === this.generation) {
          this.store(hash, principal);
        }
        return principal;
      })
      .finally(() => {
        if (this.pending.get(hash) === loading) this.pending.delete(hash);
      });
    this.pending.set(hash, loading);
    return loading;
  }

  private store(hash: string, principal: ApiKeyPrincipal): void {
    const expiresAt = Math.min(this.now() + this.options.ttlMs, principal.validUntil ?? Infinity);
    if (expiresAt <= this.now()) return;
    this.entries.delete(hash);
    if (this.entries.size >= this.options.maxEntries) {
      // Maps iterate in insertion order: the oldest entry goes.
      const oldest = this.entries.keys().next();
      if (!oldest.done) this.entries.delete(oldest.value);
    }
    this.entries.set(hash, { principal, expiresAt });
  }

  revoke(revocation: CredentialsRevoked): void {
    this.forgetLoadsInFlight();
    const field = { key: "keyId", project: "projectId", organization: "organizationId" } as const;
    for (const [hash, entry] of this.entries) {
      if (entry.principal[field[revocation.scope]] === revocation.id) this.entries.delete(hash);
    }
  }

  clear(): void {
    this.forgetLoadsInFlight();
    this.entries.clear();
  }

  /** A request that arrives after a revocation must not share an answer read before it. */
  private forgetLoadsInFlight(): void {
    this.generation++;
    this.pending.clear();
  }
}
