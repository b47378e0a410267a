import { applyDecorators } from '@nestjs/common';
import { ApiResponse } from '@nestjs/swagger';
import { DomainErrorCode } from './domain-error';
import { ERROR_CODES } from './error-codes';
import { ErrorResponseDto } from './error-response.dto';

/**
 * Documents the error answers of a route (or every route of a controller) from the codes it can
 * answer: one response per HTTP status (ERROR_CODES), each with the error envelope schema and its codes.
 * Statuses already documented on a method are merged with a controller's (Nest keeps both).
 */
export function ApiErrors(...codes: DomainErrorCode[]): MethodDecorator & ClassDecorator {
  const byStatus = new Map<number, DomainErrorCode[]>();
  for (const code of codes) {
    const { status } = ERROR_CODES[code];
    byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  }
  return applyDecorators(
    ...[...byStatus.entries()]
      .sort(([a], [b]) => a - b)
      .map(([status, list]) =>
        ApiResponse({
          status,
          type: ErrorResponseDto,
          description: list.map((code) => `${code}: ${ERROR_CODES[code].meaning}`).join('\n\n'),
        }),
      ),
  );
}
