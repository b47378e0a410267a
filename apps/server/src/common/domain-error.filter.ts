import { ArgumentsHost, Catch, ExceptionFilter, HttpException, HttpStatus, Logger } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import type { Request, Response } from 'express';
import { QueryFailedError } from 'typeorm';
import { DomainError, DomainErrorCode } from './domain-error';
import { codeForHttpStatus, ERROR_CODES } from './error-codes';
import { currentCorrelationId } from './request-context';

/** SQLSTATE class 22 "data exception" (PostgreSQL Appendix A): invalid text representation, out of range, … */
function isDataException(error: unknown): error is QueryFailedError {
  if (!(error instanceof QueryFailedError)) return false;
  const code = (error.driverError as { code?: unknown }).code;
  return typeof code === 'string' && code.startsWith('22');
}

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
    let body: { code: DomainErrorCode; message: string; details?: unknown };

    if (exception instanceof DomainError) {
      status = ERROR_CODES[exception.code].status;
      body = { code: exception.code, message: exception.message, details: exception.details };
    } else if (exception instanceof HttpException) {
      status = exception.getStatus();
      const raw = exception.getResponse();
      const message =
        typeof raw === 'object' && raw !== null && 'message' in raw
          ? (raw as { message: unknown }).message
          : exception.message;
      body = {
        code: codeForHttpStatus(status),
        message: Array.isArray(message) ? message.join('; ') : String(message),
        details: Array.isArray(message)
          ? { problems: message }
          : typeof raw === 'object' && raw !== null && !('message' in raw)
            ? (raw as Record<string, unknown>)
            : undefined,
      };
    } else if (isDataException(exception)) {
      // Defence in depth behind DTO and cursor validation: a value PostgreSQL cannot take (SQLSTATE class 22,
      // e.g. out of range or not a uuid) came from the request, so it is the client's error, not the server's.
      status = HttpStatus.BAD_REQUEST;
      body = { code: DomainErrorCode.Invalid, message: 'a value of the request is out of range or malformed' };
      this.logger.warn(`correlationId=${correlationId} refused a value the database cannot take: ${exception.message}`);
    } else {
      status = HttpStatus.INTERNAL_SERVER_ERROR;
      body = { code: DomainErrorCode.Internal, message: `internal error; quote correlation id ${correlationId}` };
      this.logger.error(
        `unhandled error correlationId=${correlationId}: ${(exception as Error)?.stack ?? String(exception)}`,
      );
    }
    if (response.headersSent) {
      response.destroy();
      return;
    }
    // An error answered before the body was read (authentication, limits): do not drain the rest of it.
    const request = host.switchToHttp().getRequest<Request | undefined>();
    if (request && !request.complete) response.setHeader('Connection', 'close');
    response.status(status).json({ error: { ...body, correlationId } });
  }
}
