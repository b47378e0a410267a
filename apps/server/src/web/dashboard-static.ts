import { Logger } from '@nestjs/common';
import type { NextFunction, Request, Response } from 'express';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { static as serveStatic } from 'express';

/**
 * The dashboard's Content-Security-Policy: scripts, styles and connections only from this server, no inline
 * script, no eval (no 'unsafe-inline' / 'unsafe-eval' anywhere), no framing, no plugins. React sets styles
 * through the CSSOM, which style-src does not restrict, so the bars' widths need no inline style attribute.
 */
export const DASHBOARD_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "manifest-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "object-src 'none'",
].join('; ');

/** Paths that belong to the API and the server's own pages: never answered with the app. */
const SERVER_PATHS = /^\/(api|docs|docs-json|healthz|readyz|metrics)(\/|$)/;

function securityHeaders(response: Response): void {
  response.setHeader('Content-Security-Policy', DASHBOARD_CSP);
  response.setHeader('X-Content-Type-Options', 'nosniff');
  response.setHeader('Referrer-Policy', 'same-origin');
  response.setHeader('X-Frame-Options', 'DENY');
}

/**
 * Express middleware serving the built dashboard (apps/web → WEB_DIR) at `/`: hashed assets cached for a
 * year, index.html never cached, and every other GET outside the API answered with index.html so a
 * reload on /rollouts/… opens the app on that page (SPA fallback). Returns null without a build.
 */
export function dashboardMiddleware(
  webDir: string,
): ((request: Request, response: Response, next: NextFunction) => void) | null {
  const index = join(webDir, 'index.html');
  if (!existsSync(index)) {
    new Logger('Dashboard').log(`no dashboard build in ${webDir} (npm run build:web): / is not served`);
    return null;
  }
  const assets = serveStatic(webDir, {
    index: false,
    fallthrough: true,
    setHeaders(response, path) {
      securityHeaders(response as Response);
      response.setHeader(
        'Cache-Control',
        path.includes(`${join(webDir, 'assets')}`) ? 'public, max-age=31536000, immutable' : 'no-cache',
      );
    },
  });
  return (request, response, next) => {
    if ((request.method !== 'GET' && request.method !== 'HEAD') || SERVER_PATHS.test(request.path)) return next();
    assets(request, response, () => {
      securityHeaders(response);
      response.setHeader('Cache-Control', 'no-cache');
      response.sendFile(index);
    });
  };
}
