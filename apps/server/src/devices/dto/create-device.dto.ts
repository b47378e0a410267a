import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { DEVICE_ID_PATTERN } from '@cowroot/protocol';
import { ArrayMaxSize, IsArray, IsOptional, IsString, Matches, NotContains } from 'class-validator';
import { MAX_TAGS, TAG_PATTERN } from '../device-rules';

export class CreateDeviceDto {
  @ApiProperty({ example: 'gw-0042', pattern: DEVICE_ID_PATTERN.source })
  @IsString()
  @Matches(DEVICE_ID_PATTERN)
  @NotContains('..')
  id!: string;

  @ApiPropertyOptional({ type: [String], example: ['canary', 'site=berlin'] })
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(MAX_TAGS)
  @IsString({ each: true })
  @Matches(TAG_PATTERN, { each: true })
  tags?: string[];
}
