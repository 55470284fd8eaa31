import { randomBytes } from "node:crypto";
import { Bus } from "@llmaas/bus";
import { createLogger } from "@llmaas/telemetry";
import { testEnv } from "./env.js";
import { deleteNamespaceStreams } from "./stack.js";

export const silentLogger = createLogger({ service: "test", instanceId: "test", level: "silent" });

/** A bus in a namespace of its own; `close` drains it and deletes the streams made in that namespace. */
export async function connectTestBus(namespace = `test_${randomBytes(6).toString("hex")}`) {
  const bus = await Bus.connect({ servers: testEnv.NATS_URL, name: "test", logger: silentLogger, namespace });
  return {
    bus,
    namespace,
    close: async () => {
      await bus.drain();
      await deleteNamespaceStreams(namespace);
    },
  };
}
