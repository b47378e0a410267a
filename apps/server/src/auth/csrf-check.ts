import { timingSafeEqual } from 'node:crypto';

/** Methods that never change state: a cookie session may use them without the CSRF header. */
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

export interface CsrfRequest {
  method: string;
  /** the request's own origin as the server sees it, e.g. `https://fleet.example.com` */
  ownOrigin: string;
  origin?: string;
  referer?: string;
  csrfHeader?: string;
}

/**
 * Why a cookie-authenticated request must be refused as a possible cross-site request forgery, or null.
 * Two independent checks (OWASP CSRF cheat sheet: "synchronizer token" plus "verifying origin with standard
 * headers"): the session's CSRF token, which another site cannot read, must come back in X-CSRF-Token, and
 * the browser's Origin (or, without one, Referer) must be this server. SameSite=Strict on the cookie is a
 * third layer that older browsers lack.
 */
export function csrfProblem(request: CsrfRequest, sessionCsrf: string): string | null {
  if (SAFE_METHODS.has(request.method.toUpperCase())) return null;
  const origin = request.origin ?? refererOrigin(request.referer);
  if (!origin) return 'a state-changing request needs an Origin header';
  if (origin !== request.ownOrigin) return `Origin ${origin} is not this server (${request.ownOrigin})`;
  if (!request.csrfHeader) return 'the X-CSRF-Token header is missing';
  const given = Buffer.from(request.csrfHeader);
  const expected = Buffer.from(sessionCsrf);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return 'the X-CSRF-Token header is wrong';
  return null;
}

function refererOrigin(referer: string | undefined): string | null {
  if (!referer) return null;
  try {
    return new URL(referer).origin;
  } catch {
    return null;
  }
}
