import type { FastifyReply } from "fastify";
import { toPlatformError } from "@llmaas/contracts";
import { errorBody } from "./errors.js";
import { timeoutError } from "./inference.js";

/** Server-sent events as OpenAI sends them: `data: <json>` per event, `data: [DONE]` at the end. */
export class EventStream {
  private readonly raw: FastifyReply["raw"];

  constructor(reply: FastifyReply, requestId: string) {
    // Headers already set on the reply (request id, deprecation notices) go out with the stream's.
    const headers = Object.fromEntries(
      Object.entries(reply.getHeaders()).filter(
        (entry): entry is [string, string | number | string[]] => entry[1] !== undefined,
      ),
    );
    reply.hijack();
    this.raw = reply.raw;
    this.raw.writeHead(200, {
      ...headers,
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache",
      connection: "keep-alive",
      "x-request-id": requestId,
      // Proxies such as nginx would otherwise hold tokens back in their buffers.
      "x-accel-buffering": "no",
    });
  }

  send(data: unknown): void {
    this.raw.write(`data: ${JSON.stringify(data)}\n\n`);
  }

  done(): void {
    this.raw.write("data: [DONE]\n\n");
    this.raw.end();
  }

  /** Headers are gone once streaming starts: an error travels in the stream, as OpenAI sends it. */
  fail(error: unknown, timedOut: boolean): void {
    if (!this.raw.destroyed) this.send(errorBody(timedOut ? timeoutError() : toPlatformError(error)));
    this.raw.end();
  }
}
