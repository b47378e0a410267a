import { Body, Controller, Delete, Get, HttpCode, Param, ParseUUIDPipe, Post } from '@nestjs/common';
import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import { Actor } from './actor';
import { CurrentActor } from './current-actor.decorator';
import { CreateTokenDto } from './dto/create-token.dto';
import { CreatedTokenDto, TokenDto } from './dto/token.dto';
import { Role } from './role.enum';
import { Roles } from './roles.decorator';
import { TokensService } from './tokens.service';

@ApiTags('tokens')
@ApiBearerAuth()
@Roles(Role.Admin)
@Controller('api/v1/tokens')
export class TokensController {
  constructor(private readonly tokens: TokensService) {}

  @Post()
  async create(@Body() body: CreateTokenDto, @CurrentActor() actor: Actor): Promise<CreatedTokenDto> {
    const { token, secret } = await this.tokens.create(body.name, body.role, actor);
    return { ...TokenDto.from(token), token: secret };
  }

  @Get()
  async list(): Promise<TokenDto[]> {
    return (await this.tokens.list()).map((token) => TokenDto.from(token));
  }

  @Delete(':id')
  @HttpCode(200)
  async revoke(@Param('id', ParseUUIDPipe) id: string, @CurrentActor() actor: Actor): Promise<TokenDto> {
    return TokenDto.from(await this.tokens.revoke(id, actor));
  }
}
