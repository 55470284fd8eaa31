import { pino, type Logger } from "pino";

export type { Logger } from "pino";

/**
 * Paths under which request or response content could appear. They are removed, not masked, so a prompt can reach
 * no log line even if a future call site passes a whole request or message by mistake.
 */
const CONTENT_PATHS = [
  "body",
  "payload",
  "messages",
  "prompt",
  "content",
  "input",
  "text",
  "choices",
  "apiKey",
  "authorization",
  "headers",
];

const REDACTED_PATHS = CONTENT_PATHS.flatMap((key) => [key, `*.${key}`]);

export interface LoggerOptions {
  service: string;
  instanceId: string;
  level: string;
  /** Where lines go; tests pass a stream to read them. */
  destination?: NodeJS.WritableStream;
}

export function createLogger(options: LoggerOptions): Logger {
  return pino(
    {
      level: options.level,
      base: { service: options.service, instance: options.instanceId },
      redact: { paths: REDACTED_PATHS, remove: true },
      serializers: {
        // Only the request line: fastify's default serializer is safe too, but this one cannot grow a body field.
        req: (req: { method?: string; url?: string; id?: string }) => ({
          method: req.method,
          url: req.url,
          id: req.id,
        }),
        res: (res: { statusCode?: number }) => ({ statusCode: res.statusCode }),
        err: pino.stdSerializers.err,
      },
    },
    options.destination ?? process.stdout,
  );
}
