/** The dashboard's session cookie (web-sessions.service.ts). */
export const SESSION_COOKIE = 'cowroot_session';

/** The value of one cookie of a Cookie header (RFC 6265 §5.4), or null. */
export function readCookie(header: string | undefined, name: string): string | null {
  if (!header) return null;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim() || null;
  }
  return null;
}

/**
 * Set-Cookie for the session: HttpOnly (no script reads it), SameSite=Strict (no other site's page sends it),
 * Path=/, Secure when the server speaks HTTPS. maxAgeSeconds 0 deletes it.
 */
export function sessionCookie(value: string, maxAgeSeconds: number, secure: boolean): string {
  return [
    `${SESSION_COOKIE}=${value}`,
    'Path=/',
    'HttpOnly',
    'SameSite=Strict',
    `Max-Age=${Math.max(0, Math.floor(maxAgeSeconds))}`,
    ...(secure ? ['Secure'] : []),
  ].join('; ');
}
