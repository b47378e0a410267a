import { ApiProperty } from '@nestjs/swagger';

/** Where a resumable upload stands: send the next chunk from `offset`. */
export class UploadStatusDto {
  @ApiProperty({ description: 'bytes stored so far' }) offset!: number;
  @ApiProperty({ description: 'total size announced by the manifest' }) size!: number;
}
