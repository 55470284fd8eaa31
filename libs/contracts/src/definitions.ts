import type { z } from "zod";

/**
 * Every subject on the bus, versioned in its name. A subject is either a request (with a reply schema), an event
 * published to whoever listens, or a JetStream subject whose messages are persisted (never carrying content: the
 * platform keeps no prompts or answers).
 */
export interface RequestSubject<Req extends z.ZodType, Rep extends z.ZodType> {
  readonly kind: "request";
  readonly subject: string;
  readonly request: Req;
  readonly reply: Rep;
}

export interface EventSubject<Msg extends z.ZodType> {
  readonly kind: "event";
  readonly subject: string;
  readonly message: Msg;
}

export function requestSubject<Req extends z.ZodType, Rep extends z.ZodType>(
  subject: string,
  request: Req,
  reply: Rep,
): RequestSubject<Req, Rep> {
  return { kind: "request", subject, request, reply };
}

export function eventSubject<Msg extends z.ZodType>(subject: string, message: Msg): EventSubject<Msg> {
  return { kind: "event", subject, message };
}
