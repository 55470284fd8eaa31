export * from "./bus.js";
export * from "./trace-context.js";
export { createInbox, type Subscription, type Msg, type MsgHdrs } from "@nats-io/transport-node";
export * from "./streams.js";
export {
  fetchBody,
  offerBody,
  openBodyOffers,
  type BodyReference,
  type TransferOptions,
} from "./large-body.js";
