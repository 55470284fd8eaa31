import type { Connection } from "./config.js";
import { ApiError, PlatformUnavailableError } from "./errors.js";

const REQUEST_TIMEOUT_MS = 30_000;

export type HttpMethod = "GET" | "POST" | "DELETE";

export interface RequestOptions {
  query?: URLSearchParams;
  body?: object;
}

/** A cursor-paginated list, as every list endpoint of the OpenAI Administration API returns it. */
export interface ListPage<Item> {
  object: "list";
  data: Item[];
  first_id?: string | null;
  last_id?: string | null;
  has_more: boolean;
}

/** Path segments are escaped so that an id cannot change which resource a request addresses. */
export function apiPath(strings: TemplateStringsArray, ...segments: string[]): string {
  return strings.reduce((path, text, index) => {
    const segment = segments[index - 1];
    return path + (segment === undefined ? "" : encodeURIComponent(segment)) + text;
  });
}

function describeFailure(error: unknown, host: string): string {
  // AbortSignal.timeout() rejects with a DOMException named TimeoutError.
  if (typeof error === "object" && error !== null && "name" in error && error.name === "TimeoutError") {
    return `no response from ${host} within ${REQUEST_TIMEOUT_MS / 1000} s`;
  }
  // fetch reports network failures as "fetch failed"; the cause says which (ECONNREFUSED, ENOTFOUND, ...).
  const cause: unknown = error instanceof Error ? (error.cause ?? error) : error;
  const detail =
    cause instanceof Error ? ((cause as NodeJS.ErrnoException).code ?? cause.message) : String(cause);
  return `cannot reach ${host}: ${detail}`;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/** The message of an OpenAI-shaped error body, if it is one. */
function errorMessageOf(body: unknown): string | undefined {
  if (typeof body !== "object" || body === null || !("error" in body)) return undefined;
  const error = body.error;
  if (typeof error !== "object" || error === null || !("message" in error)) return undefined;
  return typeof error.message === "string" && error.message !== "" ? error.message : undefined;
}

function checkPage<Item>(body: unknown): ListPage<Item> {
  if (typeof body !== "object" || body === null || !("data" in body) || !Array.isArray(body.data)) {
    throw new PlatformUnavailableError("the platform answered a list request without a list");
  }
  return body as ListPage<Item>;
}

export class ApiClient {
  private readonly connection: Connection;

  constructor(connection: Connection) {
    this.connection = connection;
  }

  /** Sends one request and returns the parsed JSON body of a 2xx answer; throws ApiError for the others. */
  async request(method: HttpMethod, path: string, options: RequestOptions = {}): Promise<unknown> {
    const url = new URL(this.connection.baseUrl + path);
    if (options.query) url.search = options.query.toString();
    const headers: Record<string, string> = {
      authorization: `Bearer ${this.connection.token}`,
      accept: "application/json",
    };
    if (options.body !== undefined) headers["content-type"] = "application/json";

    let status: number;
    let statusText: string;
    let text: string;
    try {
      const response = await fetch(url, {
        method,
        headers,
        body: options.body === undefined ? undefined : JSON.stringify(options.body),
        // Not following redirects keeps the credential from being sent anywhere but the configured URL.
        redirect: "manual",
        // One deadline for the answer and its body.
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
      status = response.status;
      statusText = response.statusText;
      text = await response.text();
    } catch (error) {
      throw new PlatformUnavailableError(describeFailure(error, url.host));
    }

    const body = parseJson(text);
    if (status >= 200 && status < 300) {
      if (body === undefined) {
        throw new PlatformUnavailableError(`${status} the platform answered with something other than JSON`);
      }
      return body;
    }
    const platformMessage = errorMessageOf(body);
    if (platformMessage !== undefined) throw new ApiError(status, platformMessage, body);
    const message =
      status >= 300 && status < 400 ? "unexpected redirect, not followed" : statusText || "request failed";
    // Scripts reading --json output get an OpenAI-shaped error even when, say, a proxy answered with HTML.
    throw new ApiError(status, message, { error: { message, type: null, param: null, code: null } });
  }

  /**
   * Lists a collection. With `all`, follows the `after` cursor while `has_more` and returns one list holding
   * every page's items; otherwise returns the first page as the platform sent it.
   */
  async list<Item extends { id: string }>(
    path: string,
    query: URLSearchParams,
    all: boolean,
  ): Promise<ListPage<Item>> {
    const first = checkPage<Item>(await this.request("GET", path, { query }));
    if (!all) return first;

    const items = [...first.data];
    let page = first;
    while (page.has_more) {
      const cursor = page.last_id ?? page.data.at(-1)?.id;
      if (!cursor || cursor === query.get("after")) {
        throw new PlatformUnavailableError("the platform said there are more results but gave no new cursor");
      }
      query.set("after", cursor);
      page = checkPage<Item>(await this.request("GET", path, { query }));
      items.push(...page.data);
    }
    return { object: "list", data: items, first_id: first.first_id, last_id: page.last_id, has_more: false };
  }
}
