import { z } from "zod";

/** A calendar day, `YYYY-MM-DD`. Lifecycle days are UTC days: a day starts at 00:00 UTC. */
const Day = z.iso.date();

export const Lifecycle = z.discriminatedUnion("status", [
  z.strictObject({ status: z.literal("active") }),
  z.strictObject({
    status: z.literal("deprecated"),
    deprecated_on: Day,
    retires_on: Day,
    replacement: z.string().min(1),
  }),
  // Retired from the moment the catalogue says so: `retired_on` records when, it schedules nothing (to schedule a
  // retirement, deprecate with `retires_on`).
  z.strictObject({
    status: z.literal("retired"),
    retired_on: Day,
    replacement: z.string().min(1),
  }),
]);
export type Lifecycle = z.infer<typeof Lifecycle>;
export type LifecycleStatus = Lifecycle["status"];

/** Customers get at least this many calendar months between a deprecation and the retirement it announces. */
export const MIN_DEPRECATION_MONTHS = 3;

/** The instant a lifecycle day begins. */
export function startOfDay(day: string): Date {
  return new Date(`${day}T00:00:00Z`);
}

/** `day` plus `months` calendar months; a day the target month lacks becomes its last (Nov 30 + 3 → Feb 28/29). */
export function addCalendarMonths(day: string, months: number): string {
  const start = startOfDay(day);
  const year = start.getUTCFullYear();
  const month = start.getUTCMonth() + months;
  const lastDay = new Date(Date.UTC(year, month + 1, 0)).getUTCDate();
  return new Date(Date.UTC(year, month, Math.min(start.getUTCDate(), lastDay))).toISOString().slice(0, 10);
}

/** A deprecated model counts as retired from the first instant of its `retires_on` day. */
export function statusAt(lifecycle: Lifecycle, now: Date): LifecycleStatus {
  if (lifecycle.status === "deprecated" && now.getTime() >= startOfDay(lifecycle.retires_on).getTime()) {
    return "retired";
  }
  return lifecycle.status;
}

/**
 * A lifecycle as clients see it at one instant (the `lifecycle` field of `/v1/models`): a deprecated model past its
 * `retires_on` is retired, and `replacement` is the first model along the replacement chain still served.
 */
export type LifecycleView =
  | { status: "active" }
  | { status: "deprecated"; deprecated_on: string; retires_on: string; replacement: string }
  | { status: "retired"; deprecated_on?: string; retired_on: string; replacement: string };
