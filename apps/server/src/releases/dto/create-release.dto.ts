import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { RELEASE_NAME_PATTERN, RELEASE_VERSION_PATTERN } from '@cowroot/protocol';
import { IsOptional, IsString, Matches, MaxLength } from 'class-validator';

export class CreateReleaseDto {
  @ApiProperty({ example: 'gateway-os', pattern: RELEASE_NAME_PATTERN.source })
  @IsString()
  @Matches(RELEASE_NAME_PATTERN)
  name!: string;

  @ApiProperty({ example: '2026.11.1', pattern: RELEASE_VERSION_PATTERN.source })
  @IsString()
  @Matches(RELEASE_VERSION_PATTERN)
  version!: string;

  @ApiPropertyOptional({ maxLength: 1024 })
  @IsOptional()
  @IsString()
  @MaxLength(1024)
  description?: string;
}
