import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Transform } from 'class-transformer';
import { ArrayMaxSize, IsArray, IsOptional, IsString, MaxLength } from 'class-validator';

export class ReleaseBasesQueryDto {
  @ApiPropertyOptional({
    description: 'only devices with every one of these tags (repeat the parameter, or comma-separated)',
    type: [String],
  })
  @IsOptional()
  @Transform(({ value }) =>
    (Array.isArray(value) ? value : [value]).flatMap((v: unknown) => String(v).split(',')).filter(Boolean),
  )
  @IsArray()
  @ArrayMaxSize(32)
  @IsString({ each: true })
  @MaxLength(64, { each: true })
  tag?: string[];
}

export class ReleaseBaseDto {
  @ApiProperty() version!: string;
  @ApiProperty({ description: 'active targeted devices holding a read-only snapshot received from it' })
  devices!: number;
}

export class ReleaseBasesDto {
  @ApiProperty() name!: string;
  @ApiProperty({ type: [ReleaseBaseDto], description: 'most-held first' }) bases!: ReleaseBaseDto[];
}
