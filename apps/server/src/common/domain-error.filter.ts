import { ArgumentsHost, Catch, ExceptionFilter, HttpException, HttpStatus, Logger } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import type { Response } from 'express';
import { DomainError, DomainErrorCode } from './domain-error';
import { codeForHttpStatus, ERROR_CODES } from './error-codes';
import { currentCorrelationId } from './request-context';

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
    response.status(status).json({ error: { ...body, correlationId } });
  }
}
