import { Controller, Get, Param, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { ApiErrors } from '../common/api-errors.decorator';
import { DomainErrorCode as E } from '../common/domain-error';
import { ReleaseBasesDto, ReleaseBasesQueryDto } from './dto/release-bases.dto';
import { ReleaseBasesService } from './release-bases.service';

/**
 * A path of its own rather than /releases/{name}/bases, which `GET /releases/{name}/{version}` would
 * shadow for a version called "bases".
 */
@ApiTags('releases')
@ApiBearerAuth()
@ApiErrors(E.Unauthorized)
@Controller('api/v1/release-bases')
export class ReleaseBasesController {
  constructor(private readonly bases: ReleaseBasesService) {}

  @Get(':name')
  @ApiOperation({
    summary: 'Which releases of this name the (tag-selected) active devices hold: the parents to build deltas from',
  })
  @ApiOkResponse({ type: ReleaseBasesDto })
  @ApiErrors(E.Invalid)
  async list(@Param('name') name: string, @Query() query: ReleaseBasesQueryDto): Promise<ReleaseBasesDto> {
    return { name, bases: await this.bases.bases(name, query.tag ?? []) };
  }
}
