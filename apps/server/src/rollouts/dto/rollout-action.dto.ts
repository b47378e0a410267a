import { ApiPropertyOptional } from '@nestjs/swagger';
import { IsOptional, IsString, MaxLength } from 'class-validator';

/** Body of pause, resume, cancel, approve and retry: why, for the audit log. */
export class RolloutActionDto {
  @ApiPropertyOptional({ description: 'recorded in the audit log' })
  @IsOptional()
  @IsString()
  @MaxLength(1024)
  reason?: string;
}
