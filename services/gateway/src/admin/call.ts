import type { z } from "zod";
import type { Bus } from "@llmaas/bus";
import type { Catalogue } from "@llmaas/catalogue";
import type { RequestSubject } from "@llmaas/contracts";

export interface AdminRoutesOptions {
  bus: Bus;
  catalogue: Catalogue;
  /** How long the owning service (`auth`, or `metering` for usage) may take to answer. */
  timeoutMs: number;
}

export type BusCall = <Req extends z.ZodType, Rep extends z.ZodType>(
  subject: RequestSubject<Req, Rep>,
  payload: z.input<Req>,
) => Promise<z.output<Rep>>;

/** One request to the service that owns what the route reads or changes: `auth`, or `metering` for usage. */
export function busCaller(options: AdminRoutesOptions): BusCall {
  return (subject, payload) =>
    options.bus.request(subject, subject.subject, payload, { timeoutMs: options.timeoutMs });
}
