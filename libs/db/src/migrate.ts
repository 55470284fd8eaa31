// Migrations run against whatever schema exists, so they take an untyped handle.
/* eslint-disable @typescript-eslint/no-explicit-any */
import type { Kysely } from "kysely";
import { Migrator, type Migration, type MigrationProvider, type MigrationResultSet } from "kysely/migration";
import * as initial from "./migrations/0001_initial.js";
import * as organizations from "./migrations/0002_organizations.js";
import * as metering from "./migrations/0003_metering.js";
import * as limits from "./migrations/0004_limits.js";
import * as quotaLeases from "./migrations/0005_quota_leases.js";
import * as guardrail from "./migrations/0006_guardrail.js";

/** Migrations are compiled in rather than read from a folder, so they run the same from source and from a bundle. */
const migrations: Record<string, Migration> = {
  "0001_initial": initial,
  "0002_organizations": organizations,
  "0003_metering": metering,
  "0004_limits": limits,
  "0005_quota_leases": quotaLeases,
  "0006_guardrail": guardrail,
};

const provider: MigrationProvider = { getMigrations: () => Promise.resolve(migrations) };

export function createMigrator(db: Kysely<any>): Migrator {
  return new Migrator({ db, provider });
}

function check(result: MigrationResultSet): void {
  if (result.error) {
    const failed = result.results?.find((r) => r.status === "Error")?.migrationName ?? "unknown";
    throw new Error(`migration ${failed} failed`, { cause: result.error });
  }
}

export async function migrateToLatest(db: Kysely<any>): Promise<void> {
  check(await createMigrator(db).migrateToLatest());
}

export async function migrateDown(db: Kysely<any>): Promise<void> {
  check(await createMigrator(db).migrateDown());
}
