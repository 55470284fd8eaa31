import { createHash } from "node:crypto";
import { UsageEvent, UsageEventV1 } from "@llmaas/contracts";

/**
 * Mirrors migration 0002: a tenant's usage from before organizations belongs to the default organization, in the
 * project the migration made for that tenant (same id, derived the same way from the tenant's name).
 */
function fromVersion1({ version: _version, tenantId, ...counts }: UsageEventV1): UsageEvent {
  const tenantHash = createHash("md5").update(tenantId).digest("hex");
  return {
    version: 2,
    organizationId: "org_default",
    projectId: `proj_${tenantHash.slice(0, 24)}`,
    ...counts,
  };
}

/** Every usage event metering may find in the stream: the current version, or one published before an upgrade. */
export const StoredUsageEvent = UsageEvent.or(UsageEventV1.transform(fromVersion1));
