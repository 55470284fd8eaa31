import type { AuditActor, ClientInfo, openaiAdmin } from "@llmaas/contracts";

function clientFields(client: ClientInfo): { ip_address: string; user_agent?: string } {
  return client.userAgent === null
    ? { ip_address: client.ip }
    : { ip_address: client.ip, user_agent: client.userAgent };
}

/** The operator acts through its token: recorded as a non-human `api_key` actor whose id is `operator`. */
export function operatorActor(client: ClientInfo): AuditActor {
  return {
    type: "api_key",
    api_key: {
      id: "operator",
      type: "service_account",
      service_account: { id: "operator" },
      ...clientFields(client),
    },
  };
}

/**
 * An admin key acts for its owner: the administrator who made it (`user`), or the organization itself for keys the
 * operator issued, recorded as a `service_account` actor because it is not a person.
 */
export function adminKeyActor(
  keyId: string,
  owner: openaiAdmin.AdminApiKeyOwner,
  client: ClientInfo,
): AuditActor {
  return {
    type: "api_key",
    api_key:
      owner.type === "user"
        ? { id: keyId, type: "user", user: { id: owner.id }, ...clientFields(client) }
        : { id: keyId, type: "service_account", service_account: { id: owner.id }, ...clientFields(client) },
  };
}

export function administratorActor(
  user: { id: string; email: string | null },
  client: ClientInfo,
): AuditActor {
  return {
    type: "session",
    session: {
      user: user.email === null ? { id: user.id } : { id: user.id, email: user.email },
      ...clientFields(client),
    },
  };
}

/** A sign-in that failed before anyone was identified: only where it came from. */
export function anonymousSessionActor(client: ClientInfo): AuditActor {
  return { type: "session", session: clientFields(client) };
}
