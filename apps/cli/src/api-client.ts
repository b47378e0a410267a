import { createApiClient, type ApiClient as TypedClient, type paths } from '@cowroot/api-client';
import type { Middleware } from 'openapi-fetch';
import { CliError, ApiErrorBody } from './cli-error';
import { streamUpload, StreamUploadAnswer, TransportError } from './releases/streaming-upload';
import type { Readable } from 'node:stream';

export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

export interface Collected<T> {
  items: T[];
  /** the server has more than were collected */
  truncated: boolean;
}

/** The query parameters of a GET route, as the server's OpenAPI document declares them. */
export type QueryOf<P extends keyof paths> = paths[P] extends { get: { parameters: { query?: infer Q } } }
  ? NonNullable<Q>
  : never;

/** An openapi-fetch answer: data on 2xx, the parsed error body (or its text) otherwise. */
interface Answer<T> {
  data?: T;
  error?: unknown;
  response: Response;
}

/** JSON requests that take longer than this count as "server unreachable" */
const REQUEST_TIMEOUT_MS = 60_000;

/**
 * The REST API (`/api/v1`) as the CLI uses it: the client generated from the server's OpenAPI document
 * (`api`, libs/api-client) with a bearer token, one X-Request-Id per CLI invocation (so the server's logs
 * and audit rows of one command share it), error answers turned into ApiError, transport failures into
 * "unreachable".
 */
export class ApiClient {
  /** typed calls: `client.call(client.api.GET('/api/v1/devices/{id}', { params: { path: { id } } }))` */
  readonly api: TypedClient;

  constructor(
    readonly server: string,
    private readonly token: string,
    readonly requestId: string,
  ) {
    this.api = createApiClient({
      baseUrl: server,
      headers: { ...this.headers(), Accept: 'application/json' },
      fetch: (request) => this.fetch(request),
    });
    this.api.use(timeoutAndJsonCheck);
  }

  url(path: string): URL {
    return new URL(`${this.server}${path}`);
  }

  /** The data of a 2xx answer; the ApiError of any other. */
  async call<T>(pending: Promise<Answer<T>>): Promise<T> {
    const { data, error, response } = await pending;
    if (!response.ok) throw errorFromBody(response.status, response.statusText, error);
    return data as T;
  }

  /**
   * Follows nextCursor until `max` items (null = all) are collected. `pageSize` is the server's limit
   * per page; the last page asks only for what is still needed.
   */
  async collect<T>(
    fetchPage: (page: { limit: number; cursor?: string }) => Promise<Page<T>>,
    max: number | null,
    pageSize: number,
  ): Promise<Collected<T>> {
    const items: T[] = [];
    let cursor: string | undefined;
    for (;;) {
      const limit = max === null ? pageSize : Math.min(pageSize, max - items.length);
      const page = await fetchPage({ limit, cursor });
      items.push(...page.items);
      if (!page.nextCursor) return { items, truncated: false };
      if (max !== null && items.length >= max) return { items: items.slice(0, max), truncated: true };
      cursor = page.nextCursor;
    }
  }

  /** Streams `body` as the request body (artifact uploads). Error answers are returned, not thrown. */
  async upload(
    method: 'PUT',
    path: string,
    headers: Record<string, string>,
    body: Readable,
    contentLength: number,
  ): Promise<StreamUploadAnswer> {
    return streamUpload({
      url: this.url(path),
      method,
      headers: { ...this.headers(), ...headers },
      body,
      contentLength,
    });
  }

  private headers(): Record<string, string> {
    return { Authorization: `Bearer ${this.token}`, 'X-Request-Id': this.requestId, 'User-Agent': 'cowroot-cli' };
  }

  private async fetch(request: Request): Promise<Response> {
    try {
      return await fetch(request);
    } catch (error) {
      throw CliError.unreachable(this.server, describeFetchFailure(error));
    }
  }
}

/**
 * JSON calls give up after REQUEST_TIMEOUT_MS (streams, like the audit export, take as long as they take),
 * and a 2xx answer that is not JSON is reported as such rather than as a parser error.
 */
const timeoutAndJsonCheck: Middleware = {
  onRequest({ request, options }) {
    if (options.parseAs === 'stream') return undefined;
    return new Request(request, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
  },
  async onResponse({ request, response, options }) {
    if (!response.ok || options.parseAs !== 'json' || response.status === 204) return undefined;
    const text = await response.text();
    try {
      if (text.length > 0) JSON.parse(text);
    } catch {
      throw new CliError(
        `the server answered ${request.method} ${new URL(request.url).pathname} with something that is not JSON (HTTP ${response.status})`,
      );
    }
    return new Response(text, { status: response.status, statusText: response.statusText, headers: response.headers });
  },
};

/** The ApiError of a non-2xx answer; tolerates bodies that are not the server's error shape (proxies). */
export function errorFrom(status: number, statusText: string, text: string): CliError {
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON: keep the HTTP status text
  }
  return errorFromBody(status, statusText, body);
}

/** The same for a body openapi-fetch already parsed (an object) or could not (its text). */
export function errorFromBody(status: number, statusText: string, body: unknown): CliError {
  const envelope = body as { error?: ApiErrorBody } | null;
  const error =
    typeof envelope === 'object' && envelope !== null && typeof envelope.error === 'object' && envelope.error !== null
      ? envelope.error
      : null;
  return CliError.fromApi(status, error, statusText);
}

/** "connect ECONNREFUSED 127.0.0.1:1" rather than fetch's bare "fetch failed". */
export function describeFetchFailure(error: unknown): string {
  if (error instanceof TransportError) return error.message;
  const err = error as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (err?.name === 'TimeoutError' || err?.name === 'AbortError')
    return `no answer within ${REQUEST_TIMEOUT_MS / 1000} s`;
  return err?.cause?.message ?? err?.cause?.code ?? err?.message ?? String(error);
}
