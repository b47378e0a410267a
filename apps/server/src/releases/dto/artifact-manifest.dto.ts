import { ApiProperty } from '@nestjs/swagger';

export class ArtifactManifestDto {
  @ApiProperty({ description: 'the exact signed manifest bytes (JSON), base64' }) manifest!: string;
  @ApiProperty({ description: 'detached ed25519 signature over the manifest bytes, base64' }) signature!: string;
  @ApiProperty({ description: 'the manifest parsed, for reading; verify against `manifest`, not this', type: Object })
  parsed!: Record<string, unknown>;
}
