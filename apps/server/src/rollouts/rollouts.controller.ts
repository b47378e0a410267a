import { Body, Controller, Get, HttpCode, Param, ParseIntPipe, Post, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiQuery, ApiTags } from '@nestjs/swagger';
import { Actor } from '../auth/actor';
import { CurrentActor } from '../auth/current-actor.decorator';
import { Role } from '../auth/role.enum';
import { Roles } from '../auth/roles.decorator';
import { Page } from '../common/cursor';
import { CreateRolloutDto } from './dto/create-rollout.dto';
import { ListExecutionsQueryDto, ListRolloutsQueryDto } from './dto/list-rollouts-query.dto';
import { RolloutActionDto } from './dto/rollout-action.dto';
import { ExecutionView, HistoryView, RolloutView } from './rollout-views';
import { RolloutsService } from './rollouts.service';

@ApiTags('rollouts')
@ApiBearerAuth()
@Controller('api/v1/rollouts')
export class RolloutsController {
  constructor(private readonly rollouts: RolloutsService) {}

  @Post()
  @Roles(Role.Operator)
  @ApiOperation({ summary: 'Create and start a rollout: plans the targeted devices into waves' })
  create(@Body() body: CreateRolloutDto, @CurrentActor() actor: Actor): Promise<RolloutView> {
    return this.rollouts.create(body, actor);
  }

  @Get()
  @ApiOperation({ summary: 'Rollouts, newest first, with waves and counts per execution state' })
  list(@Query() query: ListRolloutsQueryDto): Promise<Page<RolloutView>> {
    return this.rollouts.list(query.status, query.limit ?? 50, query.cursor);
  }

  @Get(':id')
  @ApiOperation({ summary: 'A rollout with its waves and counts per execution state' })
  get(@Param('id') id: string): Promise<RolloutView> {
    return this.rollouts.get(id);
  }

  @Get(':id/executions')
  @ApiOperation({ summary: 'Per-device executions in wave and dispatch order' })
  executions(@Param('id') id: string, @Query() query: ListExecutionsQueryDto): Promise<Page<ExecutionView>> {
    return this.rollouts.executions(id, { state: query.state, wave: query.wave }, query.limit ?? 100, query.cursor);
  }

  @Get(':id/executions/:deviceId')
  @ApiOperation({ summary: 'One device in the rollout, with its state history' })
  execution(
    @Param('id') id: string,
    @Param('deviceId') deviceId: string,
  ): Promise<ExecutionView & { history: HistoryView[] }> {
    return this.rollouts.execution(id, deviceId);
  }

  @Get(':id/timeline')
  @ApiOperation({
    summary: 'Audit timeline of the rollout and its devices, oldest first (export: GET /api/v1/audit/export)',
  })
  @ApiQuery({ name: 'limit', required: false })
  timeline(
    @Param('id') id: string,
    @Query('limit', new ParseIntPipe({ optional: true })) limit?: number,
  ): Promise<Array<Record<string, unknown>>> {
    return this.rollouts.timeline(id, Math.min(Math.max(limit ?? 1000, 1), 10_000));
  }

  @Post(':id/pause')
  @HttpCode(200)
  @Roles(Role.Operator)
  pause(@Param('id') id: string, @Body() body: RolloutActionDto, @CurrentActor() actor: Actor): Promise<RolloutView> {
    return this.rollouts.pause(id, actor, body.reason);
  }

  @Post(':id/resume')
  @HttpCode(200)
  @Roles(Role.Operator)
  @ApiOperation({ summary: 'Resume a paused rollout (a wave that missed its criterion counts as accepted)' })
  resume(@Param('id') id: string, @Body() body: RolloutActionDto, @CurrentActor() actor: Actor): Promise<RolloutView> {
    return this.rollouts.resume(id, actor, body.reason);
  }

  @Post(':id/cancel')
  @HttpCode(200)
  @Roles(Role.Operator)
  cancel(@Param('id') id: string, @Body() body: RolloutActionDto, @CurrentActor() actor: Actor): Promise<RolloutView> {
    return this.rollouts.cancel(id, actor, body.reason);
  }

  @Post(':id/approve')
  @HttpCode(200)
  @Roles(Role.Operator)
  @ApiOperation({ summary: 'Approve the next wave that needs a manual approval' })
  approve(@Param('id') id: string, @Body() body: RolloutActionDto, @CurrentActor() actor: Actor): Promise<RolloutView> {
    return this.rollouts.approve(id, actor, body.reason);
  }

  @Post(':id/retry-failed')
  @HttpCode(200)
  @Roles(Role.Operator)
  @ApiOperation({ summary: 'Give failed, rejected, rolled-back and timed-out devices (only) another attempt' })
  retryFailed(
    @Param('id') id: string,
    @Body() body: RolloutActionDto,
    @CurrentActor() actor: Actor,
  ): Promise<RolloutView> {
    return this.rollouts.retryFailed(id, actor, body.reason);
  }
}
