import { ArgumentsHost, Catch, ExceptionFilter, HttpException, HttpStatus, Logger } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import type { Response } from 'express';
import { DomainError, DomainErrorCode } from './domain-error';
import { currentCorrelationId } from './request-context';

function statusOf(code: DomainErrorCode): number {
  switch (code) {
    case DomainErrorCode.NotFound:
      return HttpStatus.NOT_FOUND;
    case DomainErrorCode.Conflict:
      return HttpStatus.CONFLICT;
    case DomainErrorCode.InvalidState:
      return HttpStatus.UNPROCESSABLE_ENTITY;
    case DomainErrorCode.Invalid:
      return HttpStatus.BAD_REQUEST;
    case DomainErrorCode.Unauthorized:
      return HttpStatus.UNAUTHORIZED;
    case DomainErrorCode.Forbidden:
      return HttpStatus.FORBIDDEN;
    case DomainErrorCode.PayloadTooLarge:
      return HttpStatus.PAYLOAD_TOO_LARGE;
  }
}

const HTTP_CODES: Record<number, string> = {
  400: 'INVALID',
  401: 'UNAUTHORIZED',
  403: 'FORBIDDEN',
  404: 'NOT_FOUND',
  409: 'CONFLICT',
  413: 'PAYLOAD_TOO_LARGE',
  416: 'RANGE_NOT_SATISFIABLE',
  422: 'INVALID_STATE',
  507: 'INSUFFICIENT_STORAGE',
};

/**
 * The one place errors become HTTP answers: domain errors by code, Nest's HttpExceptions (validation,
 * unknown routes) as they are, anything else as a 500 without internals, logged with its correlation id.
 */
@Catch()
export class DomainErrorFilter implements ExceptionFilter {
  private readonly logger = new Logger(DomainErrorFilter.name);

  catch(exception: unknown, host: ArgumentsHost): void {
    const response = host.switchToHttp().getResponse<Response>();
    const correlationId = currentCorrelationId() ?? randomUUID();
    let status: number;
    let body: { code: string; message: string; details?: unknown };

    if (exception instanceof DomainError) {
      status = statusOf(exception.code);
      body = { code: exception.code, message: exception.message, details: exception.details };
    } else if (exception instanceof HttpException) {
      status = exception.getStatus();
      const raw = exception.getResponse();
      const message =
        typeof raw === 'object' && raw !== null && 'message' in raw
          ? (raw as { message: unknown }).message
          : exception.message;
      body = {
        code: HTTP_CODES[status] ?? `HTTP_${status}`,
        message: Array.isArray(message) ? message.join('; ') : String(message),
        details: Array.isArray(message)
          ? { problems: message }
          : typeof raw === 'object' && raw !== null && !('message' in raw)
            ? (raw as Record<string, unknown>)
            : undefined,
      };
    } else {
      status = HttpStatus.INTERNAL_SERVER_ERROR;
      body = { code: 'INTERNAL', message: `internal error; quote correlation id ${correlationId}` };
      this.logger.error(
        `unhandled error correlationId=${correlationId}: ${(exception as Error)?.stack ?? String(exception)}`,
      );
    }
    if (response.headersSent) {
      response.destroy();
      return;
    }
    response.status(status).json({ error: { ...body, correlationId } });
  }
}
