import { ApiProperty } from '@nestjs/swagger';
import { IsEnum, IsString, Length } from 'class-validator';
import { Role } from '../role.enum';

export class CreateTokenDto {
  @ApiProperty({ example: 'ci-pipeline' })
  @IsString()
  @Length(1, 128)
  name!: string;

  @ApiProperty({ enum: Role })
  @IsEnum(Role)
  role!: Role;
}
