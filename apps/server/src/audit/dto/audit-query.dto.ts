import { ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsIn, IsInt, IsISO8601, IsOptional, IsString, Max, MaxLength, Min } from 'class-validator';

export class AuditFilterDto {
  @ApiPropertyOptional({ enum: ['operator', 'device', 'system'] })
  @IsOptional()
  @IsIn(['operator', 'device', 'system'])
  actorType?: string;

  @ApiPropertyOptional() @IsOptional() @IsString() @MaxLength(128) actorId?: string;

  @ApiPropertyOptional({ description: 'exact action, or a prefix ending in * (e.g. device.*)' })
  @IsOptional()
  @IsString()
  @MaxLength(128)
  action?: string;

  @ApiPropertyOptional() @IsOptional() @IsString() @MaxLength(64) subjectType?: string;
  @ApiPropertyOptional() @IsOptional() @IsString() @MaxLength(256) subjectId?: string;
  @ApiPropertyOptional() @IsOptional() @IsISO8601({ strict: true, strictSeparator: true }) from?: string;
  @ApiPropertyOptional() @IsOptional() @IsISO8601({ strict: true, strictSeparator: true }) to?: string;
}

export class AuditQueryDto extends AuditFilterDto {
  @ApiPropertyOptional({ default: 100, maximum: 1000 })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(1000)
  limit?: number;

  @ApiPropertyOptional() @IsOptional() @IsString() @MaxLength(256) cursor?: string;
}

export class AuditExportQueryDto extends AuditFilterDto {
  @ApiPropertyOptional({ enum: ['csv', 'json'], default: 'json' })
  @IsOptional()
  @IsIn(['csv', 'json'])
  format?: 'csv' | 'json';
}
