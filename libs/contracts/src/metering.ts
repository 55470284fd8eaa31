import { z } from "zod";
import { eventSubject, requestSubject } from "./definitions.js";
import { UsageOperation, type StreamDefinition } from "./subjects.js";

/**
 * What metering publishes for billing consumers (JetStream, stream `METERING`), documented in docs/metering.md.
 * Amounts are integers in pico-units (1e-12) of the currency, as decimal strings: JSON numbers lose precision above
 * 2^53, and float arithmetic is never used for money.
 */
const PicoAmount = z.string().regex(/^\d{1,38}$/, "an integer amount in pico-units");

/** What one committed batch added to one per-minute aggregate row. */
export const UsageChange = z.object({
  /** The minute the requests ended in (ISO 8601, UTC). */
  minute: z.iso.datetime(),
  organizationId: z.string(),
  projectId: z.string(),
  keyId: z.string(),
  model: z.string(),
  /** The requests' `user`, or null. */
  endUser: z.string().nullable(),
  operation: UsageOperation,
  requests: z.number().int().positive(),
  inputTokens: z.number().int().nonnegative(),
  outputTokens: z.number().int().nonnegative(),
  audioSeconds: z.number().int().nonnegative(),
  /** Texts screened by `POST /v1/guardrail/screen`; absent from changes published before the guardrail. */
  screenedInputs: z.number().int().nonnegative().default(0),
  currency: z.string().regex(/^[A-Z]{3}$/),
  inputCostPico: PicoAmount,
  outputCostPico: PicoAmount,
  audioCostPico: PicoAmount,
});
export type UsageChange = z.infer<typeof UsageChange>;

/**
 * One committed batch of usage, in parts small enough for one message each. `Nats-Msg-Id` is
 * `<batchId>.<part>`: a batch published again after a crash is stored once within the stream's duplicate window,
 * and a consumer that sees it again outside the window recognises it by the same pair.
 */
export const UsageCommitted = z.object({
  batchId: z.string(),
  part: z.number().int().nonnegative(),
  parts: z.number().int().positive(),
  committedAt: z.iso.datetime(),
  changes: z.array(UsageChange),
});
export type UsageCommitted = z.infer<typeof UsageCommitted>;

export const usageCommitted = eventSubject("metering.v1.usage.committed", UsageCommitted);

/**
 * A usage message metering could not record: malformed, for a model with no price, or failing again and again. It
 * is kept here with the reason, counted and logged, never dropped silently; an operator replays it once the cause is
 * fixed (docs/metering.md).
 */
export const UsageDeadLetter = z.object({
  /** Where the message was in the usage stream. */
  streamSequence: z.number().int().nonnegative(),
  subject: z.string(),
  deliveries: z.number().int().positive(),
  reason: z.string(),
  /** The message as it was received (usage events carry no content). */
  data: z.string(),
  deadLetteredAt: z.iso.datetime(),
});
export type UsageDeadLetter = z.infer<typeof UsageDeadLetter>;

export const usageDeadLettered = eventSubject("metering.v1.usage.dead_lettered", UsageDeadLetter);

const DAY_MS = 24 * 60 * 60 * 1000;

export const meteringStream: StreamDefinition = {
  name: "METERING",
  subjects: ["metering.v1.>"],
  duplicateWindowMs: 15 * 60 * 1000,
  maxAgeMs: 30 * DAY_MS,
};

/**
 * What metering recorded for some requests, by request id: how a gateway settles a quota reservation whose request
 * ended without reporting its usage in band (the worker died or the request timed out). A request not recorded
 * (yet) is absent from the answer.
 */
export const usageLookup = requestSubject(
  "metering.v1.usage.lookup",
  z.object({ requestIds: z.array(z.string().min(1).max(200)).min(1).max(500) }),
  z.object({
    recorded: z.array(
      z.object({
        requestId: z.string(),
        promptTokens: z.number().int().nonnegative(),
        completionTokens: z.number().int().nonnegative(),
        audioSeconds: z.number().int().nonnegative(),
      }),
    ),
  }),
);
