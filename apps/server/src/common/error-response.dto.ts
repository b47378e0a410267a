import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { DomainErrorCode } from './domain-error';

export class ErrorBodyDto {
  @ApiProperty({ enum: DomainErrorCode, enumName: 'ErrorCode', description: 'what to act on (docs/api.md)' })
  code!: DomainErrorCode;

  @ApiProperty({ description: 'for people; do not parse' })
  message!: string;

  @ApiProperty({ description: 'X-Request-Id of the request (or a generated one); in the server log and audit' })
  correlationId!: string;

  @ApiPropertyOptional({
    type: 'object',
    additionalProperties: true,
    description: 'machine-readable context, e.g. problems, rows, usages, offset, status',
  })
  details?: Record<string, unknown>;
}

/** The body of every error answer: `{"error":{code,message,correlationId,details?}}`. */
export class ErrorResponseDto {
  @ApiProperty({ type: ErrorBodyDto }) error!: ErrorBodyDto;
}
