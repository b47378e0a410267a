import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DomainErrorCode } from './domain-error';
import { codeForHttpStatus, ERROR_CODES } from './error-codes';

const DOC = join(__dirname, '../../../../docs/api.md');

describe('ERROR_CODES', () => {
  it('gives every code an error status and a meaning', () => {
    for (const code of Object.values(DomainErrorCode)) {
      expect(ERROR_CODES[code].status).toBeGreaterThanOrEqual(400);
      expect(ERROR_CODES[code].meaning.length).toBeGreaterThan(10);
    }
  });

  it('is the table in docs/api.md §Error codes, row for row', () => {
    const section = readFileSync(DOC, 'utf8').split('### Error codes')[1].split('\n## ')[0];
    const rows = [...section.matchAll(/^\| `([A-Z_]+)` \| (\d{3}) \| (.+) \|$/gm)].map(([, code, status, meaning]) => ({
      code,
      status: Number(status),
      meaning,
    }));
    const expected = Object.entries(ERROR_CODES).map(([code, { status, meaning }]) => ({ code, status, meaning }));
    expect(rows).toEqual(expected);
  });

  it("gives Nest's own errors the generic code of their status", () => {
    expect(codeForHttpStatus(400)).toBe(DomainErrorCode.Invalid);
    expect(codeForHttpStatus(404)).toBe(DomainErrorCode.NotFound);
    expect(codeForHttpStatus(413)).toBe(DomainErrorCode.PayloadTooLarge);
    expect(codeForHttpStatus(405)).toBe(DomainErrorCode.Invalid);
    expect(codeForHttpStatus(503)).toBe(DomainErrorCode.NotReady);
    expect(codeForHttpStatus(502)).toBe(DomainErrorCode.Internal);
    for (const status of [400, 401, 403, 404, 409, 413, 416, 422, 503, 507])
      expect(ERROR_CODES[codeForHttpStatus(status)].status).toBe(status);
  });
});
