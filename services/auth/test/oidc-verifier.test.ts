import { once } from "node:events";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import t from "tap";
import { base64url, CompactSign, exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from "jose";
import { isAcceptableJwksUri, type OidcSettings } from "@llmaas/contracts";
import { OidcVerifier, peekIssuer, roleFromClaims, type OidcResult } from "../src/oidc/verifier.js";

const ISSUER = "https://idp.example.com/realms/acme";
const AUDIENCE = "llmaas-console";

interface SigningKey {
  alg: "RS256" | "ES256";
  kid: string;
  privateKey: CryptoKey;
  jwk: JWK;
}

async function signingKey(alg: "RS256" | "ES256", kid: string): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg);
  return { alg, kid, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg, use: "sig" } };
}

const rsa = await signingKey("RS256", "rsa-1");
const ec = await signingKey("ES256", "ec-1");
const rotated = await signingKey("RS256", "rsa-2");
const impostor = await signingKey("RS256", "rsa-1");

// Each test that needs its own key set gets its own path, so the verifier's per-URI cache keeps them apart.
const keySets = new Map<string, JWK[]>([
  ["main", [rsa.jwk, ec.jwk]],
  ["two-rsa", [rsa.jwk, rotated.jwk]],
]);
const fetches = new Map<string, number>();
const server = createServer((req, res) => {
  const name = (req.url ?? "").replace(/^\/jwks\//, "");
  fetches.set(name, (fetches.get(name) ?? 0) + 1);
  if (name === "hang") return;
  if (name === "broken") return void res.writeHead(500).end("internal error");
  if (name === "garbage")
    return void res.writeHead(200, { "content-type": "application/json" }).end('{"keys":5}');
  const keys = keySets.get(name);
  if (keys === undefined) return void res.writeHead(404).end();
  res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ keys }));
});
server.listen(0, "127.0.0.1");
await once(server, "listening");
const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
t.teardown(() => {
  server.closeAllConnections();
  server.close();
});

const jwksUri = (name: string): string => `${base}/jwks/${name}`;

function settings(overrides: Partial<OidcSettings> = {}): OidcSettings {
  return {
    issuer: ISSUER,
    audience: AUDIENCE,
    jwks_uri: jwksUri("main"),
    role_claim: "groups",
    owner_values: ["llmaas-owners"],
    reader_values: ["llmaas-readers"],
    ...overrides,
  };
}

const nowSeconds = (): number => Math.floor(Date.now() / 1000);

/** Claims set to undefined are left out of the token. */
async function token(
  claims: Record<string, unknown> = {},
  key: SigningKey = rsa,
  header: { kid?: string } = { kid: key.kid },
): Promise<string> {
  return new SignJWT({
    iss: ISSUER,
    aud: AUDIENCE,
    sub: "admin-42",
    exp: nowSeconds() + 300,
    groups: ["llmaas-owners"],
    ...claims,
  })
    .setProtectedHeader({ alg: key.alg, ...header })
    .sign(key.privateKey);
}

const encodeJson = (value: unknown): string => base64url.encode(JSON.stringify(value));

// A long cooldown: within one test run, an unknown kid never refetches the main key set.
const verifier = new OidcVerifier({
  clockToleranceSeconds: 30,
  jwksCooldownMs: 60_000,
  jwksTimeoutMs: 5_000,
});

const failures: { token: string; message: string }[] = [];

/** The failure code, or "ok"; failure messages are kept to check that none quotes its token. */
async function outcome(
  jwt: string,
  s: OidcSettings = settings(),
  v: OidcVerifier = verifier,
): Promise<string> {
  const result: OidcResult = await v.verify(jwt, s);
  if (result.ok) return "ok";
  failures.push({ token: jwt, message: result.message });
  return result.code;
}

void t.test("a valid RS256 token yields the administrator", async (t) => {
  const exp = nowSeconds() + 300;
  const result = await verifier.verify(
    await token({ exp, email: "ada@acme.test", name: "Ada Lovelace", preferred_username: "ada" }),
    settings(),
  );
  t.same(result, {
    ok: true,
    administrator: {
      subject: "admin-42",
      email: "ada@acme.test",
      name: "Ada Lovelace",
      role: "owner",
      expiresAt: new Date(exp * 1000),
    },
  });
});

void t.test("a valid ES256 token is accepted", async (t) => {
  t.equal(await outcome(await token({}, ec)), "ok");
});

void t.test("name falls back to preferred_username, and non-string email and name are null", async (t) => {
  const fallback = await verifier.verify(await token({ preferred_username: "ada", email: 7 }), settings());
  t.match(fallback, { ok: true, administrator: { name: "ada", email: null } });
  const neither = await verifier.verify(await token({ name: ["Ada"] }), settings());
  t.match(neither, { ok: true, administrator: { name: null, email: null } });
});

void t.test("issuer and audience must match", async (t) => {
  t.equal(await outcome(await token({ iss: "https://evil.example.com" })), "wrong_issuer");
  t.equal(await outcome(await token({ aud: "another-app" })), "wrong_audience");
  t.equal(await outcome(await token({ aud: ["another-app", AUDIENCE] })), "ok", "one of several audiences");
});

void t.test("exp and nbf are checked with the clock tolerance", async (t) => {
  t.equal(await outcome(await token({ exp: nowSeconds() - 120 })), "expired");
  t.equal(await outcome(await token({ exp: nowSeconds() - 10 })), "ok", "expired within the leeway");
  t.equal(await outcome(await token({ nbf: nowSeconds() + 120 })), "not_yet_valid");
  t.equal(await outcome(await token({ nbf: nowSeconds() + 10 })), "ok", "not yet valid within the leeway");
});

void t.test("exp and sub are required", async (t) => {
  t.equal(await outcome(await token({ exp: undefined })), "missing_claim", "no exp");
  t.equal(await outcome(await token({ sub: undefined })), "missing_claim", "no sub");
  t.equal(await outcome(await token({ sub: 42 })), "missing_claim", "sub that is not a string");
  t.equal(await outcome(await token({ exp: "tomorrow" })), "malformed_token", "exp that is not a number");
});

void t.test("signatures are checked against the issuer's keys", async (t) => {
  t.equal(
    await outcome(await token({}, impostor)),
    "invalid_signature",
    "a known kid, signed by another key",
  );
  const [header, , signature] = (await token()).split(".");
  const claims = {
    iss: ISSUER,
    aud: AUDIENCE,
    sub: "someone-else",
    exp: nowSeconds() + 300,
    groups: ["llmaas-owners"],
  };
  t.equal(
    await outcome(`${header}.${encodeJson(claims)}.${signature}`),
    "invalid_signature",
    "tampered payload",
  );
});

void t.test("only RS256 and ES256 are accepted", async (t) => {
  const claims = {
    iss: ISSUER,
    aud: AUDIENCE,
    sub: "admin-42",
    exp: nowSeconds() + 300,
    groups: ["llmaas-owners"],
  };
  t.equal(
    await outcome(`${encodeJson({ alg: "none" })}.${encodeJson(claims)}.`),
    "unsupported_algorithm",
    "none",
  );
  const hs256 = await new SignJWT(claims)
    .setProtectedHeader({ alg: "HS256", kid: "rsa-1" })
    .sign(new TextEncoder().encode("a shared secret of at least 32 bytes"));
  t.equal(await outcome(hs256), "unsupported_algorithm", "HS256");
});

void t.test("garbage is a malformed token", async (t) => {
  t.equal(await outcome("not a jwt"), "malformed_token");
  const notJson = await new CompactSign(new TextEncoder().encode("not json"))
    .setProtectedHeader({ alg: "RS256", kid: "rsa-1" })
    .sign(rsa.privateKey);
  t.equal(await outcome(notJson), "malformed_token", "a correctly signed payload that is not a claims set");
  // jose checks the signature over the raw segments before decoding the payload.
  const header = encodeJson({ alg: "RS256", kid: "rsa-1" });
  t.equal(await outcome(`${header}.%%%.abc`), "invalid_signature", "garbage payload and signature");
});

void t.test("an unknown kid within the cooldown does not refetch the key set", async (t) => {
  const s = settings({ jwks_uri: jwksUri("stable") });
  keySets.set("stable", [rsa.jwk]);
  t.equal(await outcome(await token(), s), "ok");
  t.equal(await outcome(await token({}, rotated), s), "unknown_key");
  t.equal(fetches.get("stable"), 1);
});

void t.test("a key rotation is picked up after the cooldown", async (t) => {
  const rotating = new OidcVerifier({ clockToleranceSeconds: 30, jwksCooldownMs: 200, jwksTimeoutMs: 5_000 });
  const s = settings({ jwks_uri: jwksUri("rotating") });
  keySets.set("rotating", [rsa.jwk]);
  t.equal(await outcome(await token(), s, rotating), "ok");
  t.equal(await outcome(await token({}, rotated), s, rotating), "unknown_key", "before the IdP rotates");
  keySets.set("rotating", [rsa.jwk, rotated.jwk]);
  const before = fetches.get("rotating") ?? 0;
  await sleep(300);
  t.equal(await outcome(await token({}, rotated), s, rotating), "ok", "after the IdP rotates");
  t.ok((fetches.get("rotating") ?? 0) > before, "the key set was fetched again");
});

void t.test("a token without kid is refused when several keys could match", async (t) => {
  const s = settings({ jwks_uri: jwksUri("two-rsa") });
  t.equal(await outcome(await token({}, rsa, {}), s), "unknown_key");
});

void t.test("a key set that cannot be fetched is jwks_unavailable", async (t) => {
  const down = createServer();
  down.listen(0, "127.0.0.1");
  await once(down, "listening");
  const downUri = `http://127.0.0.1:${(down.address() as AddressInfo).port}/jwks`;
  down.close();
  await once(down, "close");
  t.equal(await outcome(await token(), settings({ jwks_uri: downUri })), "jwks_unavailable", "server down");
  t.equal(await outcome(await token(), settings({ jwks_uri: jwksUri("broken") })), "jwks_unavailable", "500");
  t.equal(
    await outcome(await token(), settings({ jwks_uri: jwksUri("garbage") })),
    "jwks_unavailable",
    "no key set",
  );
  const impatient = new OidcVerifier({ clockToleranceSeconds: 30, jwksCooldownMs: 200, jwksTimeoutMs: 100 });
  t.equal(
    await outcome(await token(), settings({ jwks_uri: jwksUri("hang") }), impatient),
    "jwks_unavailable",
    "timeout",
  );
});

void t.test("a plain-http jwks_uri off the machine is refused without fetching", async (t) => {
  const realFetch = globalThis.fetch;
  let calls = 0;
  globalThis.fetch = (...args) => {
    calls += 1;
    return realFetch(...args);
  };
  t.teardown(() => {
    globalThis.fetch = realFetch;
  });
  const result = await verifier.verify(await token(), settings({ jwks_uri: "http://idp.example.com/jwks" }));
  t.match(result, { ok: false, code: "jwks_unavailable", message: /https/ });
  t.equal(calls, 0);
});

void t.test("which jwks_uri values are acceptable", async (t) => {
  t.ok(isAcceptableJwksUri("https://idp.example.com/jwks"));
  t.ok(isAcceptableJwksUri("http://127.0.0.1:8080/jwks"));
  t.ok(isAcceptableJwksUri("http://[::1]:8080/jwks"));
  t.ok(isAcceptableJwksUri("http://localhost/jwks"));
  t.notOk(isAcceptableJwksUri("http://idp.example.com/jwks"));
  t.notOk(isAcceptableJwksUri("http://127.0.0.1.example.com/jwks"));
  t.notOk(isAcceptableJwksUri("ftp://idp.example.com/jwks"));
  t.notOk(isAcceptableJwksUri("not a url"));
});

void t.test("roles come from the configured claim", async (t) => {
  t.equal(await outcome(await token({ groups: ["llmaas-owners"] })), "ok");
  const role = async (
    claims: Record<string, unknown>,
    overrides: Partial<OidcSettings> = {},
  ): Promise<string> => {
    const result = await verifier.verify(await token(claims), settings(overrides));
    return result.ok ? result.administrator.role : result.code;
  };
  t.equal(await role({ groups: ["staff", "llmaas-owners"] }), "owner", "owner value");
  t.equal(await role({ groups: ["staff", "llmaas-readers"] }), "reader", "reader value");
  t.equal(await role({ groups: ["llmaas-readers", "llmaas-owners"] }), "owner", "both");
  t.equal(await role({ groups: "llmaas-readers" }), "reader", "a single string");
  t.equal(
    await role(
      { groups: undefined, realm_access: { roles: ["offline_access", "admin"] } },
      { role_claim: "realm_access.roles", owner_values: ["admin"] },
    ),
    "owner",
    "nested realm_access.roles",
  );
  t.equal(await role({ groups: ["staff"] }), "no_role", "neither");
});

void t.test("roleFromClaims", async (t) => {
  const mapping = { role_claim: "groups", owner_values: ["owners"], reader_values: ["readers"] };
  t.equal(
    roleFromClaims({ groups: [1, null, { name: "owners" }, "readers"] }, mapping),
    "reader",
    "non-strings",
  );
  t.equal(roleFromClaims({}, mapping), null, "no claim");
  t.equal(roleFromClaims({ groups: { owners: true } }, mapping), null, "an object");
  const namespaced = { ...mapping, role_claim: "https://acme.example/roles" };
  t.equal(
    roleFromClaims({ "https://acme.example/roles": ["owners"] }, namespaced),
    "owner",
    "dotted claim name",
  );
  const prototypePath = { ...mapping, role_claim: "constructor.name" };
  t.equal(roleFromClaims({}, { ...prototypePath, owner_values: ["Object"] }), null, "no prototype walk");
});

void t.test("peekIssuer", async (t) => {
  t.same(peekIssuer(await token()), { issuer: ISSUER, audiences: [AUDIENCE] });
  t.same(peekIssuer(await token({ aud: ["a", "b"] })), { issuer: ISSUER, audiences: ["a", "b"] });
  t.equal(peekIssuer("garbage"), null);
  t.equal(peekIssuer("a.b.c"), null);
  t.equal(peekIssuer(await token({ iss: undefined })), null, "no issuer");
});

void t.test("the verifier refuses options jose would only reject later", async (t) => {
  t.throws(() => new OidcVerifier({ clockToleranceSeconds: -1, jwksCooldownMs: 0, jwksTimeoutMs: 0 }));
  t.throws(() => new OidcVerifier({ clockToleranceSeconds: 0, jwksCooldownMs: 0, jwksTimeoutMs: 1.5 }));
});

void t.test("failure messages never quote the token", async (t) => {
  t.ok(failures.length > 10);
  const leaks = failures.filter(({ token, message }) =>
    token.split(".").some((part) => part.length >= 4 && message.includes(part)),
  );
  t.same(leaks, []);
});
