import type { Kysely } from "kysely";
import type { Bus, Subscription } from "@llmaas/bus";
import { usageApiSubjects } from "@llmaas/contracts";
import type { MeteringDatabase } from "@llmaas/db";
import { queryUsageRows } from "./query.js";

/**
 * Serves the Usage and Costs API's rows (docs/usage-and-costs.md) in the queue group `metering`, so any number of
 * instances share the requests. Each request reads only the rows of its principal's organization.
 */
export function serveUsageApi(bus: Bus, db: Kysely<MeteringDatabase>): Subscription[] {
  const subject = usageApiSubjects.rows;
  return [
    bus.serve(
      subject,
      subject.subject,
      async ({ principal, ...query }) => queryUsageRows(db, principal.organizationId, query),
      { queue: "metering" },
    ),
  ];
}
