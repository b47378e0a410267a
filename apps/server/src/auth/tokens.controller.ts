import { Body, Controller, Delete, Get, HttpCode, Param, ParseUUIDPipe, Post } from '@nestjs/common';
import { ApiBearerAuth, ApiCreatedResponse, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { Actor } from './actor';
import { CurrentActor } from './current-actor.decorator';
import { CreateTokenDto } from './dto/create-token.dto';
import { CreatedTokenDto, TokenDto } from './dto/token.dto';
import { Role } from './role.enum';
import { Roles } from './roles.decorator';
import { TokensService } from './tokens.service';
import { ApiErrors } from '../common/api-errors.decorator';
import { DomainErrorCode as E } from '../common/domain-error';

@ApiTags('tokens')
@ApiBearerAuth()
@Roles(Role.Admin)
@ApiErrors(E.Unauthorized, E.Forbidden)
@Controller('api/v1/tokens')
export class TokensController {
  constructor(private readonly tokens: TokensService) {}

  @Post()
  @ApiOperation({ summary: 'Create an API token; its secret is in this answer only (the server keeps a hash)' })
  @ApiCreatedResponse({ type: CreatedTokenDto })
  @ApiErrors(E.Invalid)
  async create(@Body() body: CreateTokenDto, @CurrentActor() actor: Actor): Promise<CreatedTokenDto> {
    const { token, secret } = await this.tokens.create(body.name, body.role, actor);
    return { ...TokenDto.from(token), token: secret };
  }

  @Get()
  @ApiOperation({ summary: 'Every API token, revoked ones included (never their secrets)' })
  @ApiOkResponse({ type: [TokenDto] })
  async list(): Promise<TokenDto[]> {
    return (await this.tokens.list()).map((token) => TokenDto.from(token));
  }

  @Delete(':id')
  @HttpCode(200)
  @ApiOperation({ summary: 'Revoke a token; the last active admin token cannot be revoked' })
  @ApiOkResponse({ type: TokenDto })
  @ApiErrors(E.Invalid, E.TokenNotFound, E.LastAdminToken)
  async revoke(@Param('id', ParseUUIDPipe) id: string, @CurrentActor() actor: Actor): Promise<TokenDto> {
    return TokenDto.from(await this.tokens.revoke(id, actor));
  }
}
