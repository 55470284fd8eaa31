import {
  connect,
  type NatsConnection,
  type Msg,
  type Subscription,
  type MsgHdrs,
} from "@nats-io/transport-node";
import { NoRespondersError, RequestError, TimeoutError } from "@nats-io/nats-core";
import { jetstream, type JetStreamClient } from "@nats-io/jetstream";
import { context, SpanKind, SpanStatusCode, trace, type Span } from "@opentelemetry/api";
import type { z } from "zod";
import {
  ErrorPayload,
  PlatformError,
  toPlatformError,
  type EventSubject,
  type RequestSubject,
} from "@llmaas/contracts";
import {
  BodyReference,
  DEFAULT_TRANSFER_OPTIONS,
  fetchBody,
  inlineLimit,
  isReference,
  offerBody,
  referenceHeaders,
  type BodyOffer,
  type TransferOptions,
} from "./large-body.js";
import { contextFromHeaders, headersWithTraceContext } from "./trace-context.js";

const tracer = trace.getTracer("@llmaas/bus");

type ReplyEnvelope = { ok: true; data: unknown } | { ok: false; error: ErrorPayload };

export interface BusLogger {
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface BusOptions {
  servers: string;
  /** Shown by the NATS server's monitoring, e.g. "llm-worker/host-1234". */
  name: string;
  logger: BusLogger;
  /** See BUS_NAMESPACE: prepended to every subject and stream this bus touches. */
  namespace?: string;
  /** How bodies larger than one message are pulled (see large-body.ts). */
  transfer?: TransferOptions;
}

/** How long a reply too large for one message stays on offer for the requester to pull. */
const REPLY_OFFER_MS = 60_000;

export interface ServeOptions {
  queue?: string;
}

export interface MessageContext {
  headers: MsgHdrs | undefined;
  span: Span;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function encode(value: unknown): Uint8Array {
  return encoder.encode(JSON.stringify(value));
}

function decode(msg: Msg): unknown {
  return JSON.parse(decoder.decode(msg.data));
}

/**
 * The platform's only way onto NATS. Every payload is validated with its subject's schema on the way out and on
 * the way in, replies carry errors as `{ code, message }`, and the active trace context rides in the headers.
 */
export class Bus {
  readonly nc: NatsConnection;
  readonly js: JetStreamClient;
  readonly namespace: string;
  private readonly logger: BusLogger;
  private readonly transfer: TransferOptions;

  private constructor(nc: NatsConnection, logger: BusLogger, namespace: string, transfer: TransferOptions) {
    this.nc = nc;
    this.js = jetstream(nc);
    this.logger = logger;
    this.namespace = namespace;
    this.transfer = transfer;
  }

  static async connect(options: BusOptions): Promise<Bus> {
    const nc = await connect({ servers: options.servers, name: options.name, maxReconnectAttempts: -1 });
    return new Bus(nc, options.logger, options.namespace ?? "", options.transfer ?? DEFAULT_TRANSFER_OPTIONS);
  }

  /** The subject as it is on the wire, inside this bus's namespace. */
  subject(subject: string): string {
    return this.namespace ? `${this.namespace}.${subject}` : subject;
  }

  /** A stream name inside this bus's namespace (stream names cannot contain dots). */
  streamName(name: string): string {
    return this.namespace ? `${name}_${this.namespace}` : name;
  }

  async request<Req extends z.ZodType, Rep extends z.ZodType>(
    definition: RequestSubject<Req, Rep>,
    subject: string,
    payload: z.input<Req>,
    options: { timeoutMs: number },
  ): Promise<z.output<Rep>> {
    const body = definition.request.parse(payload);
    return tracer.startActiveSpan(
      `${definition.subject} request`,
      {
        kind: SpanKind.CLIENT,
        attributes: { "messaging.system": "nats", "messaging.destination.name": subject },
      },
      async (span) => {
        // A body too large for one message is offered for the server to pull, for as long as the request lasts.
        let offer: BodyOffer | undefined;
        try {
          let data = encode(body);
          let hdrs = headersWithTraceContext();
          if (data.length > inlineLimit(this.nc)) {
            offer = offerBody(this.nc, data, options.timeoutMs);
            data = encode(offer.reference);
            hdrs = referenceHeaders(hdrs);
            span.setAttribute("messaging.message.body.size", offer.reference.length);
          }
          const reply = await this.nc.request(this.subject(subject), data, {
            timeout: options.timeoutMs,
            headers: hdrs,
          });
          const envelope = (await this.receive(reply)) as ReplyEnvelope;
          if (!envelope.ok) throw PlatformError.fromPayload(ErrorPayload.parse(envelope.error));
          return definition.reply.parse(envelope.data);
        } catch (error) {
          const platformError = this.requestFailure(error, subject);
          span.setStatus({ code: SpanStatusCode.ERROR, message: platformError.code });
          throw platformError;
        } finally {
          offer?.withdraw();
          span.end();
        }
      },
    );
  }

  private requestFailure(error: unknown, subject: string): PlatformError {
    if (error instanceof PlatformError) return error;
    const cause = error instanceof RequestError ? error.cause : error;
    if (cause instanceof NoRespondersError || (error instanceof RequestError && error.isNoResponders())) {
      return new PlatformError(
        "model_unavailable",
        "No instance is available to serve this request; retry later.",
      );
    }
    if (cause instanceof TimeoutError || error instanceof TimeoutError) {
      return new PlatformError("request_timeout", "The request timed out waiting for a service to answer.");
    }
    this.logger.error({ err: error, subject }, "bus request failed");
    return toPlatformError(error);
  }

  /** Answers requests on `subject`; the handler's PlatformError goes back as a typed error reply. */
  serve<Req extends z.ZodType, Rep extends z.ZodType>(
    definition: RequestSubject<Req, Rep>,
    subject: string,
    handler: (payload: z.output<Req>, ctx: MessageContext) => Promise<z.input<Rep>>,
    options: ServeOptions = {},
  ): Subscription {
    return this.listen(subject, options, (msg) => void this.handleRequest(definition, msg, handler));
  }

  private listen(subject: string, options: ServeOptions, onMessage: (msg: Msg) => void): Subscription {
    return this.nc.subscribe(this.subject(subject), {
      ...(options.queue ? { queue: options.queue } : {}),
      callback: (err, msg) => {
        if (err) this.logger.error({ err, subject }, "subscription failed");
        else onMessage(msg);
      },
    });
  }

  private async handleRequest<Req extends z.ZodType, Rep extends z.ZodType>(
    definition: RequestSubject<Req, Rep>,
    msg: Msg,
    handler: (payload: z.output<Req>, ctx: MessageContext) => Promise<z.input<Rep>>,
  ): Promise<void> {
    const parent = contextFromHeaders(msg.headers);
    await tracer.startActiveSpan(
      `${definition.subject} process`,
      {
        kind: SpanKind.SERVER,
        attributes: { "messaging.system": "nats", "messaging.destination.name": msg.subject },
      },
      parent,
      async (span) => {
        let envelope: ReplyEnvelope;
        try {
          const parsed = definition.request.safeParse(await this.receive(msg));
          if (!parsed.success) {
            throw new PlatformError("invalid_request", `Malformed ${definition.subject} message.`);
          }
          const result = await handler(parsed.data, { headers: msg.headers, span });
          envelope = { ok: true, data: definition.reply.parse(result) };
        } catch (error) {
          if (!(error instanceof PlatformError))
            this.logger.error({ err: error, subject: msg.subject }, "handler failed");
          const platformError = toPlatformError(error);
          span.setStatus({ code: SpanStatusCode.ERROR, message: platformError.code });
          envelope = { ok: false, error: platformError.toPayload() };
        } finally {
          span.end();
        }
        if (msg.reply) this.respond(msg, encode(envelope));
      },
    );
  }

  /** A reply too large for one message is offered for the requester to pull, and the reference sent instead. */
  private respond(msg: Msg, data: Uint8Array): void {
    if (data.length <= inlineLimit(this.nc)) {
      msg.respond(data);
      return;
    }
    const offer = offerBody(this.nc, data, REPLY_OFFER_MS);
    msg.respond(encode(offer.reference), { headers: referenceHeaders() });
  }

  /**
   * A message's payload as JSON: inline, or pulled from the sender when the message is a reference to a large body.
   * Malformed JSON (or a malformed reference) is `undefined`, for the schema check to refuse; a transfer that fails
   * is a PlatformError.
   */
  private async receive(msg: Msg): Promise<unknown> {
    if (!isReference(msg)) return safeDecode(msg);
    const reference = BodyReference.safeParse(safeDecode(msg));
    if (!reference.success) return undefined;
    const body = await fetchBody(this.nc, reference.data, this.transfer);
    try {
      return JSON.parse(decoder.decode(body));
    } catch {
      return undefined;
    }
  }

  publish<Msg extends z.ZodType>(
    definition: EventSubject<Msg>,
    subject: string,
    payload: z.input<Msg>,
  ): void {
    this.nc.publish(this.subject(subject), encode(definition.message.parse(payload)), {
      headers: headersWithTraceContext(),
    });
  }

  /** Subscribes to events; messages that fail their schema are dropped with a warning, never passed on. */
  subscribe<Msg extends z.ZodType>(
    definition: EventSubject<Msg>,
    subject: string,
    handler: (payload: z.output<Msg>, ctx: { headers: MsgHdrs | undefined }) => void,
    options: ServeOptions = {},
  ): Subscription {
    return this.listen(subject, options, (msg) => {
      const parsed = definition.message.safeParse(safeDecode(msg));
      if (!parsed.success) {
        this.logger.warn({ subject: msg.subject }, "dropped a message that does not match its schema");
        return;
      }
      context.with(contextFromHeaders(msg.headers), () => handler(parsed.data, { headers: msg.headers }));
    });
  }

  /**
   * Publishes to JetStream with `Nats-Msg-Id`, so a retried publish of the same id inside the stream's duplicate
   * window is stored once.
   */
  async publishDurable<Msg extends z.ZodType>(
    definition: EventSubject<Msg>,
    payload: z.input<Msg>,
    msgId: string,
  ): Promise<void> {
    await this.js.publish(this.subject(definition.subject), encode(definition.message.parse(payload)), {
      msgID: msgId,
      headers: headersWithTraceContext(),
    });
  }

  /** Resolves once the server has processed everything published so far. */
  async flush(): Promise<void> {
    await this.nc.flush();
  }

  /**
   * Calls `listener` each time the connection comes back after a loss. Messages published while it was down were
   * not delivered to this client, so whatever it derived from them (a cache kept fresh by events) must be rebuilt.
   */
  onReconnect(listener: () => void): void {
    void (async () => {
      for await (const status of this.nc.status()) {
        if (status.type === "reconnect") listener();
      }
    })();
  }

  /** Lets in-flight messages finish, then closes. */
  async drain(): Promise<void> {
    if (!this.nc.isClosed()) await this.nc.drain();
  }
}

function safeDecode(msg: Msg): unknown {
  try {
    return decode(msg);
  } catch {
    return undefined;
  }
}
