import {
  AckPolicy,
  DeliverPolicy,
  StorageType,
  jetstreamManager,
  type Consumer,
  type StreamConfig,
} from "@nats-io/jetstream";
import { nanos } from "@nats-io/nats-core";
import type { StreamDefinition } from "@llmaas/contracts";
import type { Bus } from "./bus.js";

/**
 * Creates the stream or brings an existing one to the definition. Publishers and consumers both call it at start,
 * so the order in which services come up does not matter.
 */
export async function ensureStream(bus: Bus, definition: StreamDefinition): Promise<string> {
  const jsm = await jetstreamManager(bus.nc);
  const name = bus.streamName(definition.name);
  const config: Partial<StreamConfig> & { name: string } = {
    name,
    subjects: definition.subjects.map((subject) => bus.subject(subject)),
    // Usage is money: kept on disk, so a NATS restart loses nothing.
    storage: StorageType.File,
    duplicate_window: nanos(definition.duplicateWindowMs),
    max_age: nanos(definition.maxAgeMs),
  };
  try {
    await jsm.streams.info(name);
    await jsm.streams.update(name, config);
  } catch (error) {
    if (!isStreamNotFound(error)) throw error;
    try {
      await jsm.streams.add(config);
    } catch (addError) {
      // Another instance created it between our look-up and our add.
      if (!String(addError).includes("already in use")) throw addError;
    }
  }
  return name;
}

function isStreamNotFound(error: unknown): boolean {
  return error instanceof Error && /stream not found/i.test(error.message);
}

export interface DurableConsumerOptions {
  durableName: string;
  /** How long a delivered, unacknowledged message waits before it is delivered again. */
  ackWaitMs: number;
  maxAckPending: number;
}

/** A durable pull consumer with explicit acks: a message counts as handled only once it is acknowledged. */
export async function ensureDurableConsumer(
  bus: Bus,
  streamName: string,
  options: DurableConsumerOptions,
): Promise<Consumer> {
  const jsm = await jetstreamManager(bus.nc);
  const config = {
    durable_name: options.durableName,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    ack_wait: nanos(options.ackWaitMs),
    max_ack_pending: options.maxAckPending,
  };
  try {
    await jsm.consumers.add(streamName, config);
  } catch (error) {
    // The consumer exists with other settings (a new release, or another instance's configuration): bring it to ours.
    if (!/already exists|consumer name already in use/i.test(String(error))) throw error;
    await jsm.consumers.update(streamName, options.durableName, {
      ack_wait: config.ack_wait,
      max_ack_pending: config.max_ack_pending,
    });
  }
  return bus.js.consumers.get(streamName, options.durableName);
}
