import { ApiProperty } from '@nestjs/swagger';
import { Role } from '../role.enum';
import { ApiToken } from '../api-token.entity';

export class TokenDto {
  @ApiProperty() id!: string;
  @ApiProperty() name!: string;
  @ApiProperty({ enum: Role }) role!: Role;
  @ApiProperty() createdBy!: string;
  @ApiProperty() createdAt!: string;
  @ApiProperty({ nullable: true, type: String }) revokedAt!: string | null;
  @ApiProperty({ nullable: true, type: String }) lastUsedAt!: string | null;

  static from(token: ApiToken): TokenDto {
    return {
      id: token.id,
      name: token.name,
      role: token.role,
      createdBy: token.createdBy,
      createdAt: token.createdAt.toISOString(),
      revokedAt: token.revokedAt?.toISOString() ?? null,
      lastUsedAt: token.lastUsedAt?.toISOString() ?? null,
    };
  }
}

export class CreatedTokenDto extends TokenDto {
  @ApiProperty({
    description:
      'the secret to send as `Authorization: Bearer <token>`: shown only in this response (the server keeps its sha256)',
    pattern: '^cwr_[A-Za-z0-9_-]{43}$',
    example: 'cwr_3q2-7wFh0m8Y1c6bX0o9k2N4v7Rr5tUe8pQz1aLsJdW',
  })
  token!: string;
}
