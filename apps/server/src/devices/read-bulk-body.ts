import type { Request, Response } from 'express';
import { DomainError, DomainErrorCode } from '../common/domain-error';
import { parseJsonBody, readBody } from '../common/read-body';

/**
 * Largest bulk provisioning body, JSON or CSV: 10,000 devices (BULK_MAX_DEVICES) with 64-character ids, a
 * few tags and 256-character factory credentials stay under it.
 */
export const BULK_BODY_MAX_BYTES = 4 * 1024 * 1024;

export type BulkBody = { kind: 'csv'; text: string } | { kind: 'json'; value: unknown };

/**
 * The bulk route is @StreamedBody: both forms are read from the request stream here, after authentication,
 * with one limit (413 past it), and JSON gets the same NUL and depth checks as every other body.
 */
export async function readBulkBody(
  request: Request,
  response: Response,
  maxBytes = BULK_BODY_MAX_BYTES,
): Promise<BulkBody> {
  const type = (request.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
  if (type !== 'application/json' && type !== 'text/csv') {
    throw new DomainError(
      DomainErrorCode.UnsupportedContentType,
      'send the device list as application/json or text/csv',
    );
  }
  const bytes = await readBody(request, response, maxBytes, 'the device list (split it)');
  if (type === 'application/json') return { kind: 'json', value: parseJsonBody(bytes) };
  const text = bytes.toString('utf8');
  if (text.includes('\u0000')) throw new DomainError(DomainErrorCode.Invalid, 'the CSV must not contain NUL (U+0000)');
  return { kind: 'csv', text };
}
