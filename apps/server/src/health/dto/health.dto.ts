import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';

export class LivenessDto {
  @ApiProperty({ enum: ['ok'] }) status!: 'ok';
}

const INDICATORS = {
  type: 'object',
  additionalProperties: { type: 'object', additionalProperties: true, properties: { status: { type: 'string' } } },
  description: 'per dependency (database, mqtt): { status: "up" | "down", … }',
} as const;

/** @nestjs/terminus's HealthCheckResult; a failed check answers 503 with it as error.details. */
export class ReadinessDto {
  @ApiProperty({ enum: ['ok', 'error', 'shutting_down'] }) status!: 'ok' | 'error' | 'shutting_down';
  @ApiPropertyOptional(INDICATORS) info?: Record<string, unknown>;
  @ApiPropertyOptional(INDICATORS) error?: Record<string, unknown>;
  @ApiProperty(INDICATORS) details!: Record<string, unknown>;
}
