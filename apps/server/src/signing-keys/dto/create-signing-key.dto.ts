import { ApiProperty } from '@nestjs/swagger';
import { IsString, Length, Matches } from 'class-validator';

export class CreateSigningKeyDto {
  @ApiProperty({ example: 'release-2026' })
  @IsString()
  @Matches(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/)
  name!: string;

  @ApiProperty({ description: 'ed25519 public key, PEM (SubjectPublicKeyInfo: -----BEGIN PUBLIC KEY-----)' })
  @IsString()
  @Length(1, 4096)
  publicKeyPem!: string;
}
