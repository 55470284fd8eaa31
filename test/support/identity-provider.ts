import { once } from "node:events";
import { randomBytes } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { base64url, exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from "jose";

/**
 * A test OpenID provider: it publishes a JWKS on 127.0.0.1 (plain http, which the platform accepts on loopback) and
 * mints ID tokens with its keys, or with keys it does not publish, or with no key at all. Every token it makes is
 * handed to `onToken` first, so a test registers it in the stack's secrets: an identity token is a credential.
 */

export type SigningAlgorithm = "RS256" | "ES256";

interface SigningKey {
  alg: SigningAlgorithm;
  kid: string;
  privateKey: CryptoKey;
  jwk: JWK;
}

/**
 * Which key signs a token:
 * - `rs`, `es`: the published RS256 and ES256 keys;
 * - `foreign`: an RS256 key the provider never publishes, announced under the published RS256 key's `kid` unless
 *   told otherwise (a forged signature);
 * - `next`: the key `rotate()` will publish next; until then its `kid` is unknown to the JWKS.
 */
export type KeyChoice = "rs" | "es" | "foreign" | "next";

export interface SignOptions {
  /** Claims over the defaults; a claim set to `undefined` is left out. */
  claims?: Record<string, unknown>;
  key?: KeyChoice;
  /** The header's `kid`: the chosen key's own by default, `null` for none. */
  kid?: string | null;
  /** Seconds from now to `exp` (negative: already expired); 300 by default. */
  expiresIn?: number;
}

export interface IdentityProviderOptions {
  /** The `aud` of the tokens it mints, unless a token says otherwise. */
  audience?: string;
  /** Claims every token carries unless overridden (after `iss`, `aud`, `sub`, `iat`, `exp`). */
  defaultClaims?: Record<string, unknown>;
  /** Called with every token minted, before it is returned. */
  onToken?: (token: string) => void;
}

export interface IdentityProvider {
  /** `http://127.0.0.1:<port>`, the `iss` of its tokens. */
  readonly issuer: string;
  readonly jwksUri: string;
  readonly audience: string;
  /** The `kid`s the JWKS publishes now, in order. */
  readonly publishedKids: string[];
  /** How many times the JWKS was fetched. */
  readonly jwksFetches: number;
  /** The `kid` `rotate()` will publish next (the one `key: "next"` signs with). */
  readonly nextKid: string;
  sign(options?: SignOptions): Promise<string>;
  /** An HS256 token over the given claims, with a secret of its own (an algorithm the platform must refuse). */
  signHs256(options?: Pick<SignOptions, "claims" | "expiresIn">): Promise<string>;
  /** An unsigned token (`alg: none`, empty signature), made by hand as no library will. */
  unsigned(options?: Pick<SignOptions, "claims" | "expiresIn">): string;
  /** The token with its payload's claims changed and its signature kept. */
  tamper(token: string, claims: Record<string, unknown>): string;
  /** Publishes the `next` key beside the others and prepares a new `next`; resolves with the published kid. */
  rotate(): Promise<string>;
  close(): Promise<void>;
}

async function signingKey(alg: SigningAlgorithm, kid: string): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg);
  return { alg, kid, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg, use: "sig" } };
}

const nowSeconds = (): number => Math.floor(Date.now() / 1000);

function encodeJson(value: unknown): string {
  return base64url.encode(JSON.stringify(value));
}

/** Drops the claims set to `undefined`, so a test can leave out a default one. */
function defined(claims: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(claims).filter(([, value]) => value !== undefined));
}

export async function startIdentityProvider(
  options: IdentityProviderOptions = {},
): Promise<IdentityProvider> {
  const audience = options.audience ?? "llmaas-console";
  const onToken = options.onToken ?? (() => undefined);
  const rs = await signingKey("RS256", "rs-1");
  const es = await signingKey("ES256", "es-1");
  const foreign = await signingKey("RS256", "foreign-1");
  let generation = 2;
  let next = await signingKey("RS256", `rs-${generation}`);
  const published: SigningKey[] = [rs, es];
  let fetches = 0;

  const server: Server = createServer((request, response) => {
    if (request.method === "GET" && request.url === "/jwks") {
      fetches += 1;
      response
        .writeHead(200, { "content-type": "application/json", "cache-control": "no-store" })
        .end(JSON.stringify({ keys: published.map((key) => key.jwk) }));
      return;
    }
    response.writeHead(404, { "content-type": "application/json" }).end('{"error":"not_found"}');
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const claimsOf = (overrides: Record<string, unknown> = {}, expiresIn = 300): Record<string, unknown> => {
    const now = nowSeconds();
    return defined({
      iss: issuer,
      aud: audience,
      sub: "administrator",
      iat: now,
      exp: now + expiresIn,
      ...options.defaultClaims,
      ...overrides,
    });
  };

  const minted = (token: string): string => {
    onToken(token);
    return token;
  };

  const keyFor = (choice: KeyChoice): SigningKey => {
    switch (choice) {
      case "rs":
        return rs;
      case "es":
        return es;
      case "foreign":
        return foreign;
      case "next":
        return next;
    }
  };

  return {
    issuer,
    jwksUri: `${issuer}/jwks`,
    audience,
    get publishedKids() {
      return published.map((key) => key.kid);
    },
    get jwksFetches() {
      return fetches;
    },
    get nextKid() {
      return next.kid;
    },

    async sign({ claims, key = "rs", kid, expiresIn } = {}) {
      const signer = keyFor(key);
      // A forged token names a key the issuer does publish, so that only the signature can give it away.
      const headerKid = kid === undefined ? (key === "foreign" ? rs.kid : signer.kid) : kid;
      const token = await new SignJWT(claimsOf(claims, expiresIn))
        .setProtectedHeader({
          alg: signer.alg,
          typ: "JWT",
          ...(headerKid === null ? {} : { kid: headerKid }),
        })
        .sign(signer.privateKey);
      return minted(token);
    },

    async signHs256({ claims, expiresIn } = {}) {
      const token = await new SignJWT(claimsOf(claims, expiresIn))
        .setProtectedHeader({ alg: "HS256", typ: "JWT", kid: rs.kid })
        .sign(randomBytes(32));
      return minted(token);
    },

    unsigned({ claims, expiresIn } = {}) {
      return minted(`${encodeJson({ alg: "none", typ: "JWT" })}.${encodeJson(claimsOf(claims, expiresIn))}.`);
    },

    tamper(token, claims) {
      const [header, payload, signature] = token.split(".");
      if (header === undefined || payload === undefined || signature === undefined)
        throw new Error("not a compact JWT");
      const original = JSON.parse(new TextDecoder().decode(base64url.decode(payload))) as Record<
        string,
        unknown
      >;
      return minted(`${header}.${encodeJson(defined({ ...original, ...claims }))}.${signature}`);
    },

    async rotate() {
      const rotated = next;
      published.push(rotated);
      generation += 1;
      next = await signingKey("RS256", `rs-${generation}`);
      return rotated.kid;
    },

    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };
}
