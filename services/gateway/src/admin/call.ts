import type { z } from "zod";
import type { Bus } from "@llmaas/bus";
import type { Catalogue } from "@llmaas/catalogue";
import type { RequestSubject } from "@llmaas/contracts";

export interface AdminRoutesOptions {
  bus: Bus;
  catalogue: Catalogue;
  /** How long `auth` may take to answer. */
  timeoutMs: number;
}

export type AuthCall = <Req extends z.ZodType, Rep extends z.ZodType>(
  subject: RequestSubject<Req, Rep>,
  payload: z.input<Req>,
) => Promise<z.output<Rep>>;

/** One request to `auth`, which owns every object these routes read or change. */
export function authCaller(options: AdminRoutesOptions): AuthCall {
  return (subject, payload) =>
    options.bus.request(subject, subject.subject, payload, { timeoutMs: options.timeoutMs });
}
