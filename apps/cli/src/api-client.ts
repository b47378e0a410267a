import { CliError, ApiErrorBody } from './cli-error';
import { streamUpload, StreamUploadAnswer, TransportError } from './releases/streaming-upload';
import type { Readable } from 'node:stream';

export type QueryValue = string | number | boolean | readonly string[] | null | undefined;
export type Query = Record<string, QueryValue>;

export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

export interface Collected<T> {
  items: T[];
  /** the server has more than were collected */
  truncated: boolean;
}

/** JSON requests that take longer than this count as "server unreachable" */
const REQUEST_TIMEOUT_MS = 60_000;

/**
 * The REST API (`/api/v1`) as the CLI uses it: bearer token, one X-Request-Id per CLI invocation (so the
 * server's logs and audit rows of one command share it), error answers turned into ApiError, transport
 * failures into "unreachable".
 */
export class ApiClient {
  constructor(
    readonly server: string,
    private readonly token: string,
    readonly requestId: string,
  ) {}

  url(path: string, query: Query = {}): URL {
    const url = new URL(`${this.server}${path}`);
    for (const [key, value] of Object.entries(query)) {
      if (value === undefined || value === null) continue;
      if (Array.isArray(value)) for (const item of value) url.searchParams.append(key, item);
      else url.searchParams.set(key, String(value));
    }
    return url;
  }

  get<T>(path: string, query?: Query): Promise<T> {
    return this.json<T>('GET', path, { query });
  }

  post<T>(path: string, body?: unknown): Promise<T> {
    return this.json<T>('POST', path, { body });
  }

  patch<T>(path: string, body?: unknown): Promise<T> {
    return this.json<T>('PATCH', path, { body });
  }

  put<T>(path: string, body?: unknown): Promise<T> {
    return this.json<T>('PUT', path, { body });
  }

  delete<T>(path: string, query?: Query): Promise<T> {
    return this.json<T>('DELETE', path, { query });
  }

  /** A request with a non-JSON body (e.g. CSV text). */
  sendText<T>(method: string, path: string, contentType: string, text: string): Promise<T> {
    return this.json<T>(method, path, { raw: { contentType, text } });
  }

  async json<T>(
    method: string,
    path: string,
    options: { query?: Query; body?: unknown; raw?: { contentType: string; text: string } } = {},
  ): Promise<T> {
    const headers: Record<string, string> = { ...this.headers(), Accept: 'application/json' };
    let body: string | undefined;
    if (options.raw) {
      headers['Content-Type'] = options.raw.contentType;
      body = options.raw.text;
    } else if (options.body !== undefined) {
      headers['Content-Type'] = 'application/json';
      body = JSON.stringify(options.body);
    }
    const response = await this.fetch(this.url(path, options.query), {
      method,
      headers,
      body,
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    const text = await response.text();
    if (!response.ok) throw errorFrom(response.status, response.statusText, text);
    if (text.length === 0) return undefined as T;
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new CliError(
        `the server answered ${method} ${path} with something that is not JSON (HTTP ${response.status})`,
      );
    }
  }

  /** An OK streaming answer (the body is left unread for the caller to pipe). */
  async openStream(path: string, query?: Query): Promise<Response> {
    const response = await this.fetch(this.url(path, query), { method: 'GET', headers: this.headers() });
    if (!response.ok) throw errorFrom(response.status, response.statusText, await response.text());
    return response;
  }

  /**
   * Follows nextCursor until `max` items (null = all) are collected. `pageSize` is the server's limit
   * per page; the last page asks only for what is still needed.
   */
  async collect<T>(path: string, query: Query, max: number | null, pageSize: number): Promise<Collected<T>> {
    const items: T[] = [];
    let cursor: string | undefined;
    for (;;) {
      const limit = max === null ? pageSize : Math.min(pageSize, max - items.length);
      const page = await this.get<Page<T>>(path, { ...query, limit, cursor });
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

  private async fetch(url: URL, init: RequestInit): Promise<Response> {
    try {
      return await fetch(url, init);
    } catch (error) {
      throw CliError.unreachable(this.server, describeFetchFailure(error));
    }
  }
}

/** The ApiError of a non-2xx answer; tolerates bodies that are not the server's error shape (proxies). */
export function errorFrom(status: number, statusText: string, text: string): CliError {
  let body: ApiErrorBody | null = null;
  try {
    const parsed = JSON.parse(text) as { error?: ApiErrorBody };
    if (parsed && typeof parsed.error === 'object' && parsed.error !== null) body = parsed.error;
  } catch {
    // not JSON: keep the HTTP status text
  }
  return CliError.fromApi(status, body, statusText);
}

/** "connect ECONNREFUSED 127.0.0.1:1" rather than fetch's bare "fetch failed". */
export function describeFetchFailure(error: unknown): string {
  if (error instanceof TransportError) return error.message;
  const err = error as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (err?.name === 'TimeoutError' || err?.name === 'AbortError')
    return `no answer within ${REQUEST_TIMEOUT_MS / 1000} s`;
  return err?.cause?.message ?? err?.cause?.code ?? err?.message ?? String(error);
}
