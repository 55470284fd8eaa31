import type { AuthenticateRequest, Principal } from "@llmaas/contracts";
import { operatorActor } from "../audit/actors.js";
import type { AuthContext } from "../context.js";
import type { OidcVerifier } from "../oidc/verifier.js";
import { credentialKind, type OperatorToken } from "../secrets.js";
import { verifyAdminKey } from "./admin-keys.js";
import { signIn } from "./administrators.js";
import { invalidApiKey, verifyApiKey } from "./api-keys.js";

export interface Authenticator {
  authenticate(request: AuthenticateRequest): Promise<Principal>;
}

/**
 * Who a Bearer credential is. The operator token is compared first (in constant time) so that no shape of token
 * can be mistaken for it; then the credential's prefix or JWT shape says which store to look in.
 */
export function createAuthenticator(
  ctx: AuthContext,
  operatorToken: OperatorToken,
  verifier: OidcVerifier,
): Authenticator {
  return {
    authenticate: async ({ credential, organizationHint, client }) => {
      if (operatorToken.matches(credential)) return { kind: "operator", actor: operatorActor(client) };
      switch (credentialKind(credential)) {
        case "api_key":
          return verifyApiKey(ctx, credential);
        case "admin_key":
          return verifyAdminKey(ctx, credential, client);
        case "oidc_token":
          return signIn(ctx, verifier, credential, organizationHint, client);
        case "other":
          throw invalidApiKey();
      }
    },
  };
}
