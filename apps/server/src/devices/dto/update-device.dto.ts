import { ApiProperty } from '@nestjs/swagger';
import { ArrayMaxSize, IsArray, IsString, Matches } from 'class-validator';
import { MAX_TAGS, TAG_PATTERN } from '../device-rules';

/** Replaces the device's tags. */
export class UpdateDeviceDto {
  @ApiProperty({ type: [String], example: ['canary'] })
  @IsArray()
  @ArrayMaxSize(MAX_TAGS)
  @IsString({ each: true })
  @Matches(TAG_PATTERN, { each: true })
  tags!: string[];
}
