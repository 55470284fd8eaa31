import type { Bus } from "@llmaas/bus";
import type { AuthContext } from "../../context.js";
import { serveModelPermissions } from "./model-permissions.js";
import { serveRateLimits } from "./rate-limits.js";
import { serveSpendLimits } from "./spend-limits.js";

/** What bounds a project's and an organization's inference: rate limits, model permissions, spend limits. */
export function serveLimits(bus: Bus, ctx: AuthContext): void {
  serveRateLimits(bus, ctx);
  serveModelPermissions(bus, ctx);
  serveSpendLimits(bus, ctx);
}
