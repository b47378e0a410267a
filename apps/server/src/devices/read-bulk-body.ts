import type { Request } from 'express';
import { DomainError, DomainErrorCode } from '../common/domain-error';

/** Largest CSV body accepted (10,000 devices with factory credentials take about 1 MB). */
export const BULK_CSV_MAX_BYTES = 4 * 1024 * 1024;

export type BulkBody = { kind: 'csv'; text: string } | { kind: 'json'; value: unknown };

/**
 * JSON arrives parsed by the app's body parser (10 MB limit, see bootstrap.ts); CSV is not parsed by it, so
 * it is read from the request stream here, with a limit.
 */
export async function readBulkBody(request: Request, maxBytes = BULK_CSV_MAX_BYTES): Promise<BulkBody> {
  const type = (request.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
  if (type === 'application/json') return { kind: 'json', value: request.body };
  if (type !== 'text/csv') {
    throw new DomainError(
      DomainErrorCode.UnsupportedContentType,
      'send the device list as application/json or text/csv',
    );
  }
  const declared = Number(request.headers['content-length'] ?? 0);
  if (declared > maxBytes) throw tooLarge(maxBytes);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes) {
      request.destroy();
      throw tooLarge(maxBytes);
    }
    chunks.push(chunk);
  }
  return { kind: 'csv', text: Buffer.concat(chunks).toString('utf8') };
}

function tooLarge(maxBytes: number): DomainError {
  return new DomainError(
    DomainErrorCode.DeviceListTooLarge,
    `the device list is larger than ${maxBytes} bytes; split it`,
  );
}
