import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';

/** Documentation of the JSON form; the body is parsed by parseBulkJson so every bad row can be listed. */
export class BulkDeviceItemDto {
  @ApiProperty({ example: 'gw-0042' }) id!: string;
  @ApiPropertyOptional({ type: [String] }) tags?: string[];
  @ApiPropertyOptional({
    description: 'factory-generated credential (24-256 printable characters); generated when absent',
  })
  credential?: string;
}

export class BulkProvisionDto {
  @ApiProperty({ type: [BulkDeviceItemDto] }) devices!: BulkDeviceItemDto[];
}

export class BulkProvisionedDeviceDto {
  @ApiProperty() id!: string;
  @ApiPropertyOptional({ description: 'only for devices whose credential the server generated; shown only here' })
  credential?: string;
}

export class BulkProvisionResultDto {
  @ApiProperty() created!: number;
  @ApiProperty({ type: [BulkProvisionedDeviceDto] }) devices!: BulkProvisionedDeviceDto[];
}
