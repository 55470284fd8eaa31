/** Exit codes are part of the interface: scripts branch on them, and the usage text documents them. */
export const ExitCode = {
  success: 0,
  refused: 1,
  usage: 2,
  unauthorized: 3,
  notFound: 4,
  unavailable: 5,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** The command line is wrong: unknown command or option, missing argument or credential. */
export class UsageError extends Error {
  /** The command group whose help to point at, if the mistake is within one. */
  readonly group: string | undefined;

  constructor(message: string, group?: string) {
    super(message);
    this.name = "UsageError";
    this.group = group;
  }
}

/** The platform answered with an error status. */
export class ApiError extends Error {
  readonly status: number;
  /** An OpenAI-shaped error body, `{"error": {"message", "type", "param", "code"}}`. */
  readonly body: unknown;

  constructor(status: number, message: string, body: unknown) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.body = body;
  }
}

/** No usable answer: the platform could not be reached, timed out, or sent something that is not the API. */
export class PlatformUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PlatformUnavailableError";
  }
}

export function exitCodeForStatus(status: number): ExitCode {
  if (status === 401 || status === 403) return ExitCode.unauthorized;
  if (status === 404) return ExitCode.notFound;
  if (status >= 500) return ExitCode.unavailable;
  return ExitCode.refused;
}
