import { ApiProperty } from '@nestjs/swagger';
import { IsString, Length } from 'class-validator';

export class DecommissionDeviceDto {
  @ApiProperty({ example: 'returned for repair (RMA 1234)' })
  @IsString()
  @Length(1, 1024)
  reason!: string;
}
