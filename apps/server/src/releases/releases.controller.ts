import { Body, Controller, Delete, Get, HttpCode, Param, Post, Query } from '@nestjs/common';
import {
  ApiBearerAuth,
  ApiCreatedResponse,
  ApiNoContentResponse,
  ApiOkResponse,
  ApiOperation,
  ApiQuery,
  ApiTags,
} from '@nestjs/swagger';
import { Actor } from '../auth/actor';
import { CurrentActor } from '../auth/current-actor.decorator';
import { Role } from '../auth/role.enum';
import { Roles } from '../auth/roles.decorator';
import { ArtifactUrlService } from './artifact-url.service';
import { ArtifactDto } from './dto/artifact.dto';
import { CreateReleaseDto } from './dto/create-release.dto';
import { ListReleasesQueryDto } from './dto/list-releases-query.dto';
import { ReleaseDto, ReleasePageDto, ReleaseWithArtifactsDto } from './dto/release.dto';
import { ReleasesService } from './releases.service';
import { ApiErrors } from '../common/api-errors.decorator';
import { DomainErrorCode as E } from '../common/domain-error';

@ApiTags('releases')
@ApiBearerAuth()
@ApiErrors(E.Unauthorized)
@Controller('api/v1/releases')
export class ReleasesController {
  constructor(
    private readonly releases: ReleasesService,
    private readonly urls: ArtifactUrlService,
  ) {}

  @Post()
  @Roles(Role.Operator)
  @ApiOperation({ summary: 'Create a release (artifacts are uploaded to it afterwards)' })
  @ApiCreatedResponse({ type: ReleaseDto })
  @ApiErrors(E.Invalid, E.Forbidden, E.ReleaseExists)
  async create(@Body() body: CreateReleaseDto, @CurrentActor() actor: Actor): Promise<ReleaseDto> {
    return ReleaseDto.from(await this.releases.create(body, actor));
  }

  @Get()
  @ApiOperation({ summary: 'List releases, newest first, with cursor pagination' })
  @ApiOkResponse({ type: ReleasePageDto })
  @ApiErrors(E.Invalid, E.InvalidCursor)
  async list(@Query() query: ListReleasesQueryDto): Promise<ReleasePageDto> {
    const page = await this.releases.list({ name: query.name }, query.limit ?? 50, query.cursor);
    return { items: page.items.map((release) => ReleaseDto.from(release)), nextCursor: page.nextCursor };
  }

  @Get(':name/:version')
  @ApiOperation({ summary: 'A release with its artifacts' })
  @ApiOkResponse({ type: ReleaseWithArtifactsDto })
  @ApiErrors(E.ReleaseNotFound)
  async get(@Param('name') name: string, @Param('version') version: string): Promise<ReleaseWithArtifactsDto> {
    const release = await this.releases.getWithArtifacts(name, version);
    return {
      ...ReleaseDto.from(release),
      artifacts: release.artifacts.map((artifact) =>
        ArtifactDto.from(artifact, this.urls.urlFor(release, artifact.file)),
      ),
    };
  }

  @Delete(':name/:version')
  @HttpCode(204)
  @Roles(Role.Operator)
  @ApiOperation({
    summary: 'Delete a release and its artifact files; refused (409) while a device or rollout still uses it',
  })
  @ApiQuery({ name: 'reason', required: false, description: 'recorded in the audit log' })
  @ApiNoContentResponse({ description: 'deleted' })
  @ApiErrors(E.Forbidden, E.ReleaseNotFound, E.ReleaseInUse)
  async delete(
    @Param('name') name: string,
    @Param('version') version: string,
    @CurrentActor() actor: Actor,
    @Query('reason') reason?: string,
  ): Promise<void> {
    await this.releases.delete(name, version, actor, typeof reason === 'string' ? reason.slice(0, 1024) : undefined);
  }
}
