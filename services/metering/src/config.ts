import { z } from "zod";
import { busEnv, catalogueEnv, commonEnv, databaseEnv, parseConfig, pricingEnv } from "@llmaas/config";

export const meteringEnv = {
  ...commonEnv,
  ...busEnv,
  ...databaseEnv,
  ...catalogueEnv,
  ...pricingEnv,
  /** Usage events written per transaction at most. */
  METERING_BATCH_SIZE: z.coerce.number().int().positive().max(10_000).default(1000),
  /** Batches one instance writes at once: the next is read and priced while the database commits the last. */
  METERING_WRITERS: z.coerce.number().int().min(1).max(16).default(2),
  /** How long a batch that is not full waits for more events: visibility lag against transactions per event. */
  METERING_LINGER_MS: z.coerce.number().int().nonnegative().max(1000).default(50),
  /** A delivered usage message not acknowledged in this time goes to another instance (after a crash, say). */
  METERING_ACK_WAIT_MS: z.coerce.number().int().min(1000).default(30_000),
  /** A message whose write fails on its own this many times is dead-lettered. */
  METERING_MAX_DELIVERIES: z.coerce.number().int().min(1).max(100).default(5),
  /**
   * Days raw usage events are kept (aggregates are kept for good). At least the usage stream's 30 days: an event
   * replayed from the stream must still find its raw row, or it would be counted twice.
   */
  USAGE_RETENTION_DAYS: z.coerce.number().int().min(31).default(400),
  USAGE_RETENTION_INTERVAL_MS: z.coerce
    .number()
    .int()
    .positive()
    .default(60 * 60 * 1000),
};

export type MeteringConfig = z.infer<z.ZodObject<typeof meteringEnv>>;

export function loadMeteringConfig(env: NodeJS.ProcessEnv): MeteringConfig {
  return parseConfig("metering", meteringEnv, env);
}
