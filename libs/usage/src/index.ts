export { usageEventOf } from "./event.js";
export { UsageOutbox, type UsageOutboxOptions } from "./outbox.js";
