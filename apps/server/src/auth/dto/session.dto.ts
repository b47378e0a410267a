import { ApiProperty } from '@nestjs/swagger';
import { IsString, Length } from 'class-validator';
import { Role } from '../role.enum';

export class CreateSessionDto {
  @ApiProperty({ description: 'an API token (cwr_…); it is checked once and never stored in the browser' })
  @IsString()
  @Length(1, 256)
  token!: string;
}

export class SessionDto {
  @ApiProperty({ description: 'id of the API token the session was opened with' }) tokenId!: string;
  @ApiProperty() name!: string;
  @ApiProperty({ enum: Role }) role!: Role;
  @ApiProperty({ description: 'send it back as X-CSRF-Token on every request that changes state' })
  csrfToken!: string;
  @ApiProperty({ format: 'date-time' }) expiresAt!: string;
}
