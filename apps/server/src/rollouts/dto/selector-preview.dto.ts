import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsOptional, ValidateNested } from 'class-validator';
import { ReleaseRefDto, SelectorDto } from './create-rollout.dto';

export class SelectorPreviewRequestDto {
  @ApiProperty({ type: SelectorDto }) @ValidateNested() @Type(() => SelectorDto) selector!: SelectorDto;

  @ApiPropertyOptional({ type: ReleaseRefDto, description: 'counts the targeted devices already booted into it' })
  @IsOptional()
  @ValidateNested()
  @Type(() => ReleaseRefDto)
  release?: ReleaseRefDto;
}

export class SelectorPreviewDto {
  @ApiProperty({ description: 'active devices the selector targets' }) targeted!: number;
  @ApiProperty({ description: 'of those, devices already booted into the release (0 without a release)' })
  alreadyRunning!: number;
  @ApiProperty({ type: [String], description: 'up to 10 of the targeted device ids, in id order' })
  sample!: string[];
}
