import { ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsIn, IsInt, IsOptional, IsString, Max, MaxLength, Min } from 'class-validator';
import { ExecutionState } from '../execution-state';
import { RolloutStatus } from '../rollout-rows';

export class ListRolloutsQueryDto {
  @ApiPropertyOptional({ enum: RolloutStatus })
  @IsOptional()
  @IsIn(Object.values(RolloutStatus))
  status?: RolloutStatus;
  @ApiPropertyOptional() @IsOptional() @IsString() @MaxLength(512) cursor?: string;

  @ApiPropertyOptional({ minimum: 1, maximum: 200, default: 50 })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(200)
  limit?: number;
}

export class ListExecutionsQueryDto {
  @ApiPropertyOptional({ enum: ExecutionState })
  @IsOptional()
  @IsIn(Object.values(ExecutionState))
  state?: ExecutionState;

  @ApiPropertyOptional() @IsOptional() @Type(() => Number) @IsInt() @Min(0) wave?: number;

  @ApiPropertyOptional({ description: 'nextCursor of the previous page' })
  @IsOptional()
  @IsString()
  @MaxLength(512)
  cursor?: string;

  @ApiPropertyOptional({ minimum: 1, maximum: 1000, default: 100 })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(1000)
  limit?: number;
}
