import { Body, Controller, Delete, Get, HttpCode, Param, ParseUUIDPipe, Post } from '@nestjs/common';
import { ApiBearerAuth, ApiCreatedResponse, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { Actor } from '../auth/actor';
import { CurrentActor } from '../auth/current-actor.decorator';
import { Role } from '../auth/role.enum';
import { Roles } from '../auth/roles.decorator';
import { CreateSigningKeyDto } from './dto/create-signing-key.dto';
import { SigningKeyDto } from './dto/signing-key.dto';
import { SigningKeysService } from './signing-keys.service';
import { ApiErrors } from '../common/api-errors.decorator';
import { DomainErrorCode as E } from '../common/domain-error';

@ApiTags('signing-keys')
@ApiBearerAuth()
@ApiErrors(E.Unauthorized)
@Controller('api/v1/signing-keys')
export class SigningKeysController {
  constructor(private readonly keys: SigningKeysService) {}

  @Post()
  @Roles(Role.Admin)
  @ApiOperation({ summary: 'Register an ed25519 public key; artifacts must be signed by an active registered key' })
  @ApiCreatedResponse({ type: SigningKeyDto })
  @ApiErrors(E.Invalid, E.SigningKeyInvalid, E.Forbidden, E.SigningKeyExists)
  async register(@Body() body: CreateSigningKeyDto, @CurrentActor() actor: Actor): Promise<SigningKeyDto> {
    return SigningKeyDto.from(await this.keys.register(body.name, body.publicKeyPem, actor));
  }

  @Get()
  @ApiOperation({ summary: 'List signing keys, revoked ones included' })
  @ApiOkResponse({ type: [SigningKeyDto] })
  async list(): Promise<SigningKeyDto[]> {
    return (await this.keys.list()).map((key) => SigningKeyDto.from(key));
  }

  @Delete(':id')
  @HttpCode(200)
  @Roles(Role.Admin)
  @ApiOperation({ summary: 'Revoke a key: new uploads signed by it are refused; stored artifacts stay' })
  @ApiOkResponse({ type: SigningKeyDto, description: 'the key, revoked (revoking twice answers it unchanged)' })
  @ApiErrors(E.Invalid, E.Forbidden, E.SigningKeyNotFound)
  async revoke(@Param('id', ParseUUIDPipe) id: string, @CurrentActor() actor: Actor): Promise<SigningKeyDto> {
    return SigningKeyDto.from(await this.keys.revoke(id, actor));
  }
}
