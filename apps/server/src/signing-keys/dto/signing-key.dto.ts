import { ApiProperty } from '@nestjs/swagger';
import { SigningKey } from '../signing-key.entity';

export class SigningKeyDto {
  @ApiProperty() id!: string;
  @ApiProperty() name!: string;
  @ApiProperty() publicKeyPem!: string;
  @ApiProperty({ description: 'sha256 (hex) of the DER SubjectPublicKeyInfo' }) fingerprint!: string;
  @ApiProperty() createdBy!: string;
  @ApiProperty() createdAt!: string;
  @ApiProperty({ nullable: true, type: String }) revokedAt!: string | null;
  @ApiProperty({ nullable: true, type: String }) revokedBy!: string | null;

  static from(key: SigningKey): SigningKeyDto {
    return {
      id: key.id,
      name: key.name,
      publicKeyPem: key.publicKeyPem,
      fingerprint: key.fingerprint,
      createdBy: key.createdBy,
      createdAt: key.createdAt.toISOString(),
      revokedAt: key.revokedAt?.toISOString() ?? null,
      revokedBy: key.revokedBy,
    };
  }
}
