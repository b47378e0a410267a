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
  @ApiProperty({ description: 'the secret, shown only in this response' })
  token!: string;
}
