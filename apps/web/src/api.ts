import { createApiClient, type ErrorResponse } from '@cowroot/api-client';

/** The typed client (libs/api-client) on this server's origin; the session cookie goes with every call. */
export const api = createApiClient({ baseUrl: window.location.origin, credentials: 'same-origin' });

let csrfToken = '';
let unauthorized: () => void = () => undefined;

/** The session's CSRF token (from POST/GET /api/v1/session): sent on every request that changes state. */
export function setCsrfToken(token: string): void {
  csrfToken = token;
}

export function onUnauthorized(handler: () => void): void {
  unauthorized = handler;
}

api.use({
  onRequest({ request }) {
    if (request.method !== 'GET' && request.method !== 'HEAD') request.headers.set('X-CSRF-Token', csrfToken);
    return request;
  },
});

/** A refused request: the server's error code, message and details (docs/api.md §Errors). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
  }
}

/** The data of an openapi-fetch answer, or an ApiError; a 401 (session over) sends the page to the login. */
export async function unwrap<T>(call: Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T> {
  const { data, error, response } = await call;
  if (response.ok) return data as T;
  const body = (error as ErrorResponse | undefined)?.error;
  if (response.status === 401) unauthorized();
  throw new ApiError(
    response.status,
    body?.code ?? `HTTP_${response.status}`,
    body?.message ?? response.statusText,
    body?.details,
  );
}
