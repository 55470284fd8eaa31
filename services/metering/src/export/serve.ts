import type { Kysely } from "kysely";
import type { Bus, Subscription } from "@llmaas/bus";
import { usageExportPage } from "@llmaas/contracts";
import type { MeteringDatabase } from "@llmaas/db";
import { readUsageExportPage, type ExportPageOptions } from "./page.js";

/** Every metering instance answers in one queue group: pages are stateless, so any of them may serve any page. */
const METERING_QUEUE = "metering";

/** Serves the usage export's pages (docs/usage-export.md), each scoped to the principal's organization. */
export function serveUsageExport(
  bus: Bus,
  db: Kysely<MeteringDatabase>,
  options: ExportPageOptions = {},
): Subscription[] {
  return [
    bus.serve(
      usageExportPage,
      usageExportPage.subject,
      (request) => readUsageExportPage(db, request, options),
      { queue: METERING_QUEUE },
    ),
  ];
}
