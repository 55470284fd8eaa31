import type { Bus } from "@llmaas/bus";
import { authVerify } from "@llmaas/contracts";
import type { Subscription } from "@nats-io/transport-node";
import type { KeyStore } from "./keys.js";

export const AUTH_QUEUE = "auth";

/** Answers `auth.v1.verify`; every auth instance joins one queue group, so any of them may answer. */
export function serveAuth(bus: Bus, keys: KeyStore): Subscription {
  return bus.serve(authVerify, authVerify.subject, ({ apiKey }) => keys.verify(apiKey), {
    queue: AUTH_QUEUE,
  });
}
