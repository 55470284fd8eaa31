import {
  context,
  propagation,
  type Context,
  type TextMapGetter,
  type TextMapSetter,
} from "@opentelemetry/api";
import { headers as natsHeaders, type MsgHdrs } from "@nats-io/nats-core";

const setter: TextMapSetter<MsgHdrs> = {
  set: (carrier, key, value) => carrier.set(key, value),
};

const getter: TextMapGetter<MsgHdrs | undefined> = {
  keys: (carrier) => (carrier ? carrier.keys() : []),
  get: (carrier, key) => carrier?.get(key) || undefined,
};

/** W3C trace context (traceparent/tracestate) of the active span, written into fresh NATS headers. */
export function headersWithTraceContext(ctx: Context = context.active()): MsgHdrs {
  const hdrs = natsHeaders();
  propagation.inject(ctx, hdrs, setter);
  return hdrs;
}

export function contextFromHeaders(hdrs: MsgHdrs | undefined): Context {
  return propagation.extract(context.active(), hdrs, getter);
}
