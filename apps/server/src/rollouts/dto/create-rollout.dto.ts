import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { DEVICE_ID_PATTERN, RELEASE_NAME_PATTERN, RELEASE_VERSION_PATTERN, RebootMode } from '@cowroot/protocol';
import { Type } from 'class-transformer';
import {
  ArrayMaxSize,
  ArrayMinSize,
  IsArray,
  IsBoolean,
  IsEnum,
  IsInt,
  IsNumber,
  IsOptional,
  IsString,
  Matches,
  Max,
  MaxLength,
  Min,
  ValidateNested,
} from 'class-validator';
import { AbortAction } from '../abort-rules';
import { FailureKind } from '../execution-state';

export class ReleaseRefDto {
  @ApiProperty({ example: 'gateway-os' }) @IsString() @Matches(RELEASE_NAME_PATTERN) name!: string;
  @ApiProperty({ example: '2026.11.1' }) @IsString() @Matches(RELEASE_VERSION_PATTERN) version!: string;
}

export class SelectorFilterDto {
  @ApiPropertyOptional({ description: 'name@version the device booted' })
  @IsOptional()
  @IsString()
  @MaxLength(200)
  bootedRelease?: string;

  @ApiPropertyOptional() @IsOptional() @IsBoolean() online?: boolean;

  @ApiPropertyOptional({ description: 'device ids starting with this' })
  @IsOptional()
  @IsString()
  @MaxLength(64)
  idPrefix?: string;
}

/** Tags, a filter and explicit ids combine with AND; `all: true` targets every active device. */
export class SelectorDto {
  @ApiPropertyOptional() @IsOptional() @IsBoolean() all?: boolean;

  @ApiPropertyOptional({ type: [String], description: 'devices carrying every one of these tags' })
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(32)
  @IsString({ each: true })
  @MaxLength(64, { each: true })
  tags?: string[];

  @ApiPropertyOptional({ type: [String] })
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(100_000)
  @Matches(DEVICE_ID_PATTERN, { each: true })
  deviceIds?: string[];

  @ApiPropertyOptional({ type: SelectorFilterDto })
  @IsOptional()
  @ValidateNested()
  @Type(() => SelectorFilterDto)
  filter?: SelectorFilterDto;
}

/** Give `count` or `percent`: waves are cumulative (1 device, 5%, 25%, 100%). */
export class WaveDto {
  @ApiPropertyOptional({ description: 'cumulative number of devices reached at the end of this wave' })
  @IsOptional()
  @IsInt()
  @Min(1)
  count?: number;

  @ApiPropertyOptional({ description: 'cumulative percentage of the targeted devices' })
  @IsOptional()
  @IsNumber()
  @Min(0.001)
  @Max(100)
  percent?: number;

  @ApiPropertyOptional({ default: 100, description: 'share of the wave that must CONFIRM' })
  @IsOptional()
  @IsNumber()
  @Min(0)
  @Max(100)
  successPercent?: number;

  @ApiProperty({ description: 'seconds a device has, from dispatch, to confirm' })
  @IsInt()
  @Min(1)
  @Max(30 * 24 * 3600)
  timeoutSeconds!: number;

  @ApiPropertyOptional({ default: 0, description: 'seconds to wait after success before the next wave' })
  @IsOptional()
  @IsInt()
  @Min(0)
  @Max(30 * 24 * 3600)
  soakSeconds?: number;

  @ApiPropertyOptional({ default: false, description: 'the wave starts only after an operator approves it' })
  @IsOptional()
  @IsBoolean()
  requiresApproval?: boolean;
}

export class AbortRuleDto {
  @ApiProperty({ enum: FailureKind }) @IsEnum(FailureKind) kind!: FailureKind;

  @ApiProperty({ description: 'percent of executed devices (confirmed + failed) that failed this way' })
  @IsNumber()
  @Min(0.001)
  @Max(100)
  thresholdPercent!: number;

  @ApiPropertyOptional({ default: 1, description: 'the rule applies once this many devices have an outcome' })
  @IsOptional()
  @IsInt()
  @Min(1)
  minExecuted?: number;

  @ApiProperty({ enum: AbortAction }) @IsEnum(AbortAction) action!: AbortAction;
}

export class CreateRolloutDto {
  @ApiProperty({ example: 'gateway-os 2026.11.1 to the field' })
  @IsString()
  @MaxLength(200)
  name!: string;

  @ApiProperty({ type: ReleaseRefDto }) @ValidateNested() @Type(() => ReleaseRefDto) release!: ReleaseRefDto;

  @ApiProperty({ type: SelectorDto }) @ValidateNested() @Type(() => SelectorDto) selector!: SelectorDto;

  @ApiProperty({ type: [WaveDto] })
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(50)
  @ValidateNested({ each: true })
  @Type(() => WaveDto)
  waves!: WaveDto[];

  @ApiPropertyOptional({ type: [AbortRuleDto] })
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(20)
  @ValidateNested({ each: true })
  @Type(() => AbortRuleDto)
  abortRules?: AbortRuleDto[];

  @ApiPropertyOptional({ description: 'at most this many devices get their command per minute' })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(1_000_000)
  dispatchPerMinute?: number;

  @ApiPropertyOptional({ default: true, description: 'random order of devices (else by id)' })
  @IsOptional()
  @IsBoolean()
  randomize?: boolean;

  @ApiPropertyOptional({ default: false, description: 'devices that match the selector later join the last wave' })
  @IsOptional()
  @IsBoolean()
  continuous?: boolean;

  @ApiPropertyOptional({ enum: RebootMode, default: RebootMode.Now })
  @IsOptional()
  @IsEnum(RebootMode)
  rebootMode?: RebootMode;

  @ApiPropertyOptional({ description: 'recorded in the audit log' })
  @IsOptional()
  @IsString()
  @MaxLength(1024)
  reason?: string;
}
