import { ArgumentsHost, BadRequestException, Logger, ServiceUnavailableException } from '@nestjs/common';
import { DomainError, DomainErrorCode } from './domain-error';
import { DomainErrorFilter } from './domain-error.filter';
import { ERROR_CODES } from './error-codes';
import { runWithCorrelationId } from './request-context';

/** Runs the filter on `exception` and returns what it answered. */
function answer(exception: unknown): { status: number; body: { error: Record<string, unknown> } } {
  const sent: { status?: number; body?: { error: Record<string, unknown> } } = {};
  const response = {
    headersSent: false,
    status(code: number) {
      sent.status = code;
      return this;
    },
    json(body: { error: Record<string, unknown> }) {
      sent.body = body;
    },
  };
  const host = {
    switchToHttp: () => ({ getResponse: () => response, getRequest: () => ({ complete: true }) }),
  } as unknown as ArgumentsHost;
  runWithCorrelationId('corr-1', () => new DomainErrorFilter().catch(exception, host));
  return { status: sent.status!, body: sent.body! };
}

describe(DomainErrorFilter.name, () => {
  beforeAll(() => Logger.overrideLogger(false));

  it('answers every domain code with its status from ERROR_CODES, in the envelope', () => {
    for (const code of Object.values(DomainErrorCode)) {
      const { status, body } = answer(new DomainError(code, `because ${code}`, { why: 1 }));
      expect(status).toBe(ERROR_CODES[code].status);
      expect(body).toEqual({
        error: { code, message: `because ${code}`, details: { why: 1 }, correlationId: 'corr-1' },
      });
    }
  });

  it('lists every validation problem of a 400 under details.problems', () => {
    const { status, body } = answer(new BadRequestException(['name must be a string', 'role is invalid']));
    expect(status).toBe(400);
    expect(body.error).toMatchObject({
      code: 'INVALID',
      message: 'name must be a string; role is invalid',
      details: { problems: ['name must be a string', 'role is invalid'] },
    });
  });

  it('answers a failed readiness check as NOT_READY with the check results as details', () => {
    const result = { status: 'error', info: {}, error: { mqtt: { status: 'down' } }, details: {} };
    const { status, body } = answer(new ServiceUnavailableException(result));
    expect(status).toBe(503);
    expect(body.error).toMatchObject({ code: 'NOT_READY', details: result });
  });

  it('answers anything else as INTERNAL without its message', () => {
    const { status, body } = answer(new Error('password=hunter2'));
    expect(status).toBe(500);
    expect(body.error.code).toBe('INTERNAL');
    expect(JSON.stringify(body)).not.toContain('hunter2');
  });
});
