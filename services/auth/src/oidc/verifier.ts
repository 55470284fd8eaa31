import {
  createRemoteJWKSet,
  decodeJwt,
  decodeProtectedHeader,
  errors,
  jwtVerify,
  type JWTVerifyGetKey,
  type RemoteJWKSet,
} from "jose";
import { isAcceptableJwksUri, type AdministratorRole, type OidcSettings } from "@llmaas/contracts";

export type OidcFailureCode =
  | "malformed_token"
  | "unsupported_algorithm"
  | "invalid_signature"
  | "unknown_key"
  | "wrong_issuer"
  | "wrong_audience"
  | "expired"
  | "not_yet_valid"
  | "missing_claim"
  | "jwks_unavailable"
  | "no_role";

export interface VerifiedAdministrator {
  subject: string;
  email: string | null;
  name: string | null;
  role: AdministratorRole;
  expiresAt: Date;
}

export type OidcResult =
  { ok: true; administrator: VerifiedAdministrator } | { ok: false; code: OidcFailureCode; message: string };

export interface OidcVerifierOptions {
  /** Leeway for exp/nbf (the service uses 30). */
  clockToleranceSeconds: number;
  /** Minimum time between two JWKS refetches triggered by an unknown kid. */
  jwksCooldownMs: number;
  /** JWKS HTTP fetch timeout. */
  jwksTimeoutMs: number;
}

const ACCEPTED_ALGORITHMS = ["RS256", "ES256"];
const JWKS_CACHE_MAX_AGE_MS = 10 * 60 * 1000;

/** Unverified look at a token's iss and aud, only to find which organization's settings to verify it with. null if it is not a JWT. */
export function peekIssuer(token: string): { issuer: string; audiences: string[] } | null {
  let claims: Record<string, unknown>;
  try {
    claims = decodeJwt(token);
  } catch {
    return null;
  }
  // Without an issuer there is no organization to look up, which the caller handles like "not a JWT".
  if (typeof claims.iss !== "string") return null;
  const aud = claims.aud;
  const audiences = typeof aud === "string" ? [aud] : Array.isArray(aud) ? aud.filter(isString) : [];
  return { issuer: claims.iss, audiences };
}

/**
 * The administrator's role from `settings.role_claim`. A claim whose own name contains dots (Auth0
 * requires namespaced names such as "https://example.com/roles") is matched whole before the name is
 * read as a path.
 */
export function roleFromClaims(
  claims: Record<string, unknown>,
  settings: Pick<OidcSettings, "role_claim" | "owner_values" | "reader_values">,
): AdministratorRole | null {
  const value = readClaim(claims, settings.role_claim);
  const values = typeof value === "string" ? [value] : Array.isArray(value) ? value.filter(isString) : [];
  if (values.some((v) => settings.owner_values.includes(v))) return "owner";
  if (values.some((v) => settings.reader_values.includes(v))) return "reader";
  return null;
}

function readClaim(claims: Record<string, unknown>, path: string): unknown {
  if (Object.hasOwn(claims, path)) return claims[path];
  let current: unknown = claims;
  for (const segment of path.split(".")) {
    // Own properties only, so a path such as "constructor" cannot reach into Object.prototype.
    if (typeof current !== "object" || current === null || !Object.hasOwn(current, segment)) return undefined;
    current = (current as Record<string, unknown>)[segment];
  }
  return current;
}

function isString(value: unknown): value is string {
  return typeof value === "string";
}

/** A failure already classified where it happened, for the cases jose's own errors cannot tell apart. */
class Rejection extends Error {
  constructor(
    readonly code: OidcFailureCode,
    message: string,
  ) {
    super(message);
  }
}

function reject(code: OidcFailureCode, message: string): OidcResult {
  return { ok: false, code, message };
}

export class OidcVerifier {
  private readonly keySets = new Map<string, RemoteJWKSet>();

  constructor(private readonly options: OidcVerifierOptions) {
    // jose would only reject these on the first verification, where they would look like a bad token.
    if (!Number.isFinite(options.clockToleranceSeconds) || options.clockToleranceSeconds < 0)
      throw new RangeError("clockToleranceSeconds must be a non-negative number");
    if (!Number.isFinite(options.jwksCooldownMs) || options.jwksCooldownMs < 0)
      throw new RangeError("jwksCooldownMs must be a non-negative number");
    if (!Number.isInteger(options.jwksTimeoutMs) || options.jwksTimeoutMs < 0)
      throw new RangeError("jwksTimeoutMs must be a non-negative integer");
  }

  async verify(token: string, settings: OidcSettings): Promise<OidcResult> {
    let alg: unknown;
    try {
      alg = decodeProtectedHeader(token).alg;
    } catch {
      return reject("malformed_token", "Token is not a well-formed JWT.");
    }
    // Decided from the header alone so that "none" and HMAC tokens never reach a key lookup.
    if (typeof alg !== "string" || !ACCEPTED_ALGORITHMS.includes(alg))
      return reject("unsupported_algorithm", "Token must be signed with RS256 or ES256.");
    if (!isAcceptableJwksUri(settings.jwks_uri))
      return reject("jwks_unavailable", "The organization's jwks_uri must use https.");

    let claims: Record<string, unknown>;
    try {
      ({ payload: claims } = await jwtVerify(token, this.keyResolver(settings.jwks_uri), {
        algorithms: ACCEPTED_ALGORITHMS,
        issuer: settings.issuer,
        audience: settings.audience,
        clockTolerance: this.options.clockToleranceSeconds,
        requiredClaims: ["exp", "sub"],
      }));
    } catch (error) {
      return classify(error);
    }

    const subject = claims.sub;
    if (typeof subject !== "string" || subject === "")
      return reject("missing_claim", "Token has no usable sub claim.");
    const role = roleFromClaims(claims, settings);
    if (role === null) return reject("no_role", "Token grants no administrator role in this organization.");
    const name = isString(claims.name)
      ? claims.name
      : isString(claims.preferred_username)
        ? claims.preferred_username
        : null;
    return {
      ok: true,
      administrator: {
        subject,
        email: isString(claims.email) ? claims.email : null,
        name,
        role,
        // jwtVerify has already required exp and checked that it is a number.
        expiresAt: new Date((claims.exp as number) * 1000),
      },
    };
  }

  /**
   * Wraps the issuer's remote key set so that its failures are classified here: once jwtVerify rethrows
   * them, a JWKS that could not be fetched is indistinguishable from other errors.
   */
  private keyResolver(jwksUri: string): JWTVerifyGetKey {
    const keySet = this.keySet(jwksUri);
    return async (header, token) => {
      try {
        return await keySet(header, token);
      } catch (error) {
        if (error instanceof errors.JWKSNoMatchingKey)
          throw new Rejection("unknown_key", "Token is signed with a key the issuer does not publish.");
        // OIDC requires a kid whenever the issuer publishes several keys, so this is not worth guessing at.
        if (error instanceof errors.JWKSMultipleMatchingKeys)
          throw new Rejection("unknown_key", "Token has no kid and the issuer publishes several keys.");
        // Timeouts, connection errors, non-200 answers, and sets or keys that do not parse.
        throw new Rejection("jwks_unavailable", "The issuer's signing keys could not be fetched.");
      }
    };
  }

  private keySet(jwksUri: string): RemoteJWKSet {
    const url = new URL(jwksUri);
    let keySet = this.keySets.get(url.href);
    if (keySet === undefined) {
      keySet = createRemoteJWKSet(url, {
        cooldownDuration: this.options.jwksCooldownMs,
        timeoutDuration: this.options.jwksTimeoutMs,
        cacheMaxAge: JWKS_CACHE_MAX_AGE_MS,
      });
      this.keySets.set(url.href, keySet);
    }
    return keySet;
  }
}

/** Maps what jwtVerify threw to a result; jose's own messages are not passed on. */
function classify(error: unknown): OidcResult {
  if (error instanceof Rejection) return reject(error.code, error.message);
  if (error instanceof errors.JWTExpired) return reject("expired", "Token has expired.");
  if (error instanceof errors.JWTClaimValidationFailed) {
    if (error.reason === "missing") return reject("missing_claim", `Token has no ${error.claim} claim.`);
    if (error.reason === "check_failed") {
      if (error.claim === "iss") return reject("wrong_issuer", "Token was issued by another issuer.");
      if (error.claim === "aud") return reject("wrong_audience", "Token is not meant for this audience.");
      if (error.claim === "nbf") return reject("not_yet_valid", "Token is not valid yet.");
    }
    return reject("malformed_token", `Token's ${error.claim} claim is invalid.`);
  }
  if (error instanceof errors.JWSSignatureVerificationFailed)
    return reject("invalid_signature", "Token signature is invalid.");
  if (error instanceof errors.JOSEError) return reject("malformed_token", "Token is not a well-formed JWT.");
  // Past the key lookup, only the key itself can fail this way (e.g. an RSA key under 2048 bits, which
  // jose rejects with a TypeError): the signature cannot be trusted.
  return reject("invalid_signature", "Token signature cannot be verified with the issuer's key.");
}
