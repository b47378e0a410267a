import { ApiPropertyOptional } from '@nestjs/swagger';
import { DEVICE_ID_PATTERN, SNAPSHOT_ID_PATTERN } from '@cowroot/protocol';
import { IsOptional, IsString, IsUUID, Matches, MaxLength } from 'class-validator';

/** Exactly one of deviceId, tag, rolloutId. */
export class CreateRollbackDto {
  @ApiPropertyOptional() @IsOptional() @Matches(DEVICE_ID_PATTERN) deviceId?: string;
  @ApiPropertyOptional() @IsOptional() @IsString() @MaxLength(64) tag?: string;
  @ApiPropertyOptional({
    description: "a rollout's devices that confirmed its release go back to where they came from",
  })
  @IsOptional()
  @IsUUID()
  rolloutId?: string;

  @ApiPropertyOptional({
    description:
      'snapshot to switch to; it must already be on the device. Default: for a rollout, the snapshot each device came from; else the newest other read-only snapshot the device holds',
  })
  @IsOptional()
  @Matches(SNAPSHOT_ID_PATTERN)
  snapshot?: string;

  @ApiPropertyOptional({ description: 'recorded in the audit log' })
  @IsOptional()
  @IsString()
  @MaxLength(1024)
  reason?: string;
}
