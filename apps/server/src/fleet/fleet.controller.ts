import { Controller, Get } from '@nestjs/common';
import { ApiBearerAuth, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { ApiErrors } from '../common/api-errors.decorator';
import { DomainErrorCode as E } from '../common/domain-error';
import { FleetSummaryDto, ReleaseDeviceCountDto } from './dto/fleet-summary.dto';
import { FleetSummaryService } from './fleet-summary.service';

@ApiTags('fleet')
@ApiBearerAuth()
@ApiErrors(E.Unauthorized)
@Controller('api/v1/fleet')
export class FleetController {
  constructor(private readonly fleet: FleetSummaryService) {}

  @Get('summary')
  @ApiOperation({ summary: 'Devices by status and online state, booted releases, running rollouts, needs attention' })
  @ApiOkResponse({ type: FleetSummaryDto })
  summary(): Promise<FleetSummaryDto> {
    return this.fleet.summary();
  }

  @Get('releases')
  @ApiOperation({ summary: 'Per release: how many active devices run it and how many hold a snapshot of it' })
  @ApiOkResponse({ type: [ReleaseDeviceCountDto] })
  releases(): Promise<ReleaseDeviceCountDto[]> {
    return this.fleet.releaseUsage();
  }
}
