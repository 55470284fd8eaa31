import type { ServerResponse } from "node:http";
import type { Bus, Subscription } from "@llmaas/bus";
import {
  inferenceEvents,
  llmCancel,
  llmChat,
  PlatformError,
  type InferenceAccepted,
  type InferenceEvent,
  type InferenceRequest,
  type TokenUsage,
} from "@llmaas/contracts";

export type OutputEvent = Exclude<InferenceEvent, { type: "error" }>;

export interface InferenceCall {
  accepted: InferenceAccepted;
  /** The worker's events in order, ending with its `done`; a worker error or a lost event throws. */
  events: AsyncIterable<OutputEvent>;
  /** Tells the worker to stop; the usage it has produced so far is still metered. */
  cancel(): void;
  /**
   * The usage the worker reported with its `done`, even when that came after a cancel; null when it did not come
   * (the worker failed, died, or took longer than `USAGE_AFTER_CANCEL_MS` to stop): metering has the last word then.
   */
  usage: Promise<TokenUsage | null>;
}

/**
 * The worker found the prompt longer than the token allowance the request was admitted with (a chat template that
 * adds more than the gateway's bound allows for) and generated nothing: the request must be admitted again for
 * `promptTokens` before it is sent again.
 */
export class PromptOverAllowance extends Error {
  override readonly name = "PromptOverAllowance";
  constructor(readonly promptTokens: number) {
    super(`the prompt is ${promptTokens} tokens, more than the request was admitted for`);
  }
}

/** A cancelled worker stops within a decode step; its `done`, with the usage so far, is awaited this long. */
const USAGE_AFTER_CANCEL_MS = 10_000;

/**
 * Sends one request to the model's workers and returns its event stream. The events subscription is opened
 * before the request goes out, because a worker may start streaming before its acceptance reply arrives.
 */
export async function startInference(
  bus: Bus,
  request: Omit<InferenceRequest, "eventsSubject">,
  options: { acceptTimeoutMs: number },
): Promise<InferenceCall> {
  const eventsSubject = inferenceEvents.forRequest(request.requestId);
  const queue = new EventQueue();
  let reportUsage: (usage: TokenUsage | null) => void = () => undefined;
  const usage = new Promise<TokenUsage | null>((resolve) => {
    reportUsage = resolve;
  });
  let finished = false;
  let lingering: NodeJS.Timeout | undefined;
  const finish = (): void => {
    if (finished) return;
    finished = true;
    clearTimeout(lingering);
    subscription.unsubscribe();
    reportUsage(null);
  };
  // The subscription outlives the reader: after a cancel it still waits for the worker's `done` and its usage.
  const subscription: Subscription = bus.subscribe(inferenceEvents, eventsSubject, (event) => {
    if (event.type === "done") reportUsage(event.usage);
    if (event.type === "done" || event.type === "error") finish();
    queue.push(event);
  });
  const linger = (): void => {
    if (finished || lingering) return;
    lingering = setTimeout(finish, USAGE_AFTER_CANCEL_MS);
  };
  let accepted: InferenceAccepted;
  try {
    accepted = await bus.request(
      llmChat,
      llmChat.forModel(request.model),
      { ...request, eventsSubject },
      { timeoutMs: options.acceptTimeoutMs },
    );
  } catch (error) {
    finish();
    throw error;
  }
  if (!accepted.started) {
    finish();
    throw new PromptOverAllowance(accepted.promptTokens);
  }

  async function* events(): AsyncGenerator<OutputEvent> {
    let expected = 0;
    try {
      for (;;) {
        const event = await queue.next();
        if (event.seq !== expected) {
          throw new PlatformError("internal_error", "The response stream from the model was interrupted.");
        }
        expected++;
        if (event.type === "error") throw PlatformError.fromPayload(event.error);
        yield event;
        if (event.type === "done") return;
      }
    } finally {
      linger();
    }
  }

  return {
    accepted,
    events: events(),
    cancel: () => {
      if (finished || queue.isClosed) return;
      bus.publish(llmCancel, llmCancel.subject, { requestId: request.requestId });
      queue.close();
      linger();
    },
    usage,
  };
}

/** Unbounded on purpose: a worker sends at most max_tokens events, and the client's pace must not drop any. */
class EventQueue {
  private readonly items: InferenceEvent[] = [];
  private waiter: ((event: InferenceEvent | null) => void) | null = null;
  private closed = false;

  push(event: InferenceEvent): void {
    if (this.closed) return;
    if (this.waiter) {
      const waiter = this.waiter;
      this.waiter = null;
      waiter(event);
    } else {
      this.items.push(event);
    }
  }

  get isClosed(): boolean {
    return this.closed;
  }

  close(): void {
    this.closed = true;
    this.waiter?.(null);
    this.waiter = null;
  }

  async next(): Promise<InferenceEvent> {
    const item = this.items.shift();
    if (item) return item;
    if (this.closed) throw new PlatformError("internal_error", "The request was cancelled.");
    const event = await new Promise<InferenceEvent | null>((resolve) => {
      this.waiter = resolve;
    });
    if (!event) throw new PlatformError("internal_error", "The request was cancelled.");
    return event;
  }
}

/**
 * Ties calls to their HTTP exchange: a client that goes away, or a request that outlives its deadline, cancels
 * every call (the worker stops generating; what it produced is still metered).
 */
export function superviseCalls(
  raw: ServerResponse,
  calls: InferenceCall[],
  timeoutMs: number,
): { timedOut: () => boolean; release: () => void } {
  let timedOut = false;
  const cancelAll = (): void => calls.forEach((call) => call.cancel());
  const timer = setTimeout(() => {
    timedOut = true;
    cancelAll();
  }, timeoutMs);
  raw.on("close", () => {
    if (!raw.writableFinished) cancelAll();
  });
  // The client may have gone while the workers were still accepting: its "close" has then already fired.
  if (raw.destroyed || raw.socket?.destroyed) cancelAll();
  return { timedOut: () => timedOut, release: () => clearTimeout(timer) };
}

export function timeoutError(): PlatformError {
  return new PlatformError("request_timeout", "The request took too long to complete and was cancelled.");
}

/** Events of several calls as they arrive, each tagged with its call's position. */
export async function* mergeEvents(calls: InferenceCall[]): AsyncGenerator<[number, OutputEvent]> {
  const iterators = calls.map((call) => call.events[Symbol.asyncIterator]());
  const pending = new Map<number, Promise<[number, IteratorResult<OutputEvent>]>>();
  const pull = (index: number): void => {
    const iterator = iterators[index];
    if (iterator)
      pending.set(
        index,
        iterator.next().then((result) => [index, result]),
      );
  };
  iterators.forEach((_, index) => pull(index));
  while (pending.size > 0) {
    const [index, result] = await Promise.race(pending.values());
    if (result.done) {
      pending.delete(index);
      continue;
    }
    pull(index);
    yield [index, result.value];
  }
}
