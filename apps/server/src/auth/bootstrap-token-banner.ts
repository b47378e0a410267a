/**
 * The generated bootstrap admin token, framed so that it cannot be missed among the start-up log lines. It is
 * shown once: the server keeps only its hash (README § Configuration says how to set one when it is lost).
 */
export function bootstrapTokenBanner(token: string): string {
  const rule = '='.repeat(78);
  return [
    '',
    rule,
    '  cowroot: BOOTSTRAP ADMIN TOKEN (shown this once; the server keeps only its hash)',
    '',
    `      ${token}`,
    '',
    '  Store it now, e.g. export TOKEN=<the token above>. Lost it? Restart the server with',
    '  COWROOT_ADMIN_TOKEN set to a secret of at least 16 characters: that becomes an admin token.',
    rule,
    '',
    '',
  ].join('\n');
}
