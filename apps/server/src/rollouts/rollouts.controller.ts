import { Body, Controller, Get, HttpCode, Param, ParseIntPipe, Post, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiCreatedResponse, ApiOkResponse, ApiOperation, ApiQuery, ApiTags } from '@nestjs/swagger';
import { Actor } from '../auth/actor';
import { CurrentActor } from '../auth/current-actor.decorator';
import { Role } from '../auth/role.enum';
import { Roles } from '../auth/roles.decorator';
import { BodyLimit } from '../common/body-limit.decorator';
import { ApiErrors } from '../common/api-errors.decorator';
import { DomainErrorCode as E } from '../common/domain-error';
import { CreateRolloutDto } from './dto/create-rollout.dto';
import { ListExecutionsQueryDto, ListRolloutsQueryDto } from './dto/list-rollouts-query.dto';
import { RolloutActionDto } from './dto/rollout-action.dto';
import { ExecutionDetailDto, ExecutionPageDto, RolloutDto, RolloutPageDto, TimelineEntryDto } from './dto/rollout.dto';
import { RolloutActions } from './rollout-actions.service';
import { RolloutsService } from './rollouts.service';
import { SelectorPreviewRequestDto, SelectorPreviewDto } from './dto/selector-preview.dto';
import { SelectorPreviewService } from './selector-preview.service';

@ApiTags('rollouts')
@ApiBearerAuth()
@ApiErrors(E.Unauthorized)
@Controller('api/v1/rollouts')
export class RolloutsController {
  constructor(
    private readonly rollouts: RolloutsService,
    private readonly actions: RolloutActions,
    private readonly previews: SelectorPreviewService,
  ) {}

  @Post()
  @Roles(Role.Operator)
  // a selector may name up to 100,000 device ids (about 3 MB of JSON)
  @BodyLimit(4 * 1024 * 1024)
  @ApiOperation({ summary: 'Create and start a rollout: plans the targeted devices into waves' })
  @ApiCreatedResponse({ type: RolloutDto })
  @ApiErrors(
    E.Invalid,
    E.RolloutSelectorEmpty,
    E.RolloutWavesInvalid,
    E.Forbidden,
    E.ReleaseNotFound,
    E.ReleaseHasNoArtifacts,
  )
  create(@Body() body: CreateRolloutDto, @CurrentActor() actor: Actor): Promise<RolloutDto> {
    return this.rollouts.create(body, actor);
  }

  @Post('preview')
  @HttpCode(200)
  // a selector may name up to 100,000 device ids, as on create
  @BodyLimit(4 * 1024 * 1024)
  @ApiOperation({
    summary: 'How many devices a selector targets and how many already run the release (changes nothing)',
  })
  @ApiOkResponse({ type: SelectorPreviewDto })
  @ApiErrors(E.Invalid, E.RolloutSelectorEmpty)
  preview(@Body() body: SelectorPreviewRequestDto): Promise<SelectorPreviewDto> {
    return this.previews.preview(body);
  }

  @Get()
  @ApiOperation({ summary: 'Rollouts, newest first, with waves and counts per execution state' })
  @ApiOkResponse({ type: RolloutPageDto })
  @ApiErrors(E.Invalid, E.InvalidCursor)
  list(@Query() query: ListRolloutsQueryDto): Promise<RolloutPageDto> {
    return this.rollouts.list(query.status, query.limit ?? 50, query.cursor);
  }

  @Get(':id')
  @ApiOperation({ summary: 'A rollout with its waves and counts per execution state' })
  @ApiOkResponse({ type: RolloutDto })
  @ApiErrors(E.RolloutNotFound)
  get(@Param('id') id: string): Promise<RolloutDto> {
    return this.rollouts.get(id);
  }

  @Get(':id/executions')
  @ApiOperation({ summary: 'Per-device executions in wave and dispatch order' })
  @ApiOkResponse({ type: ExecutionPageDto })
  @ApiErrors(E.Invalid, E.InvalidCursor, E.RolloutNotFound)
  executions(@Param('id') id: string, @Query() query: ListExecutionsQueryDto): Promise<ExecutionPageDto> {
    return this.rollouts.executions(id, { state: query.state, wave: query.wave }, query.limit ?? 100, query.cursor);
  }

  @Get(':id/executions/:deviceId')
  @ApiOperation({ summary: 'One device in the rollout, with its state history' })
  @ApiOkResponse({ type: ExecutionDetailDto })
  @ApiErrors(E.ExecutionNotFound)
  execution(@Param('id') id: string, @Param('deviceId') deviceId: string): Promise<ExecutionDetailDto> {
    return this.rollouts.execution(id, deviceId);
  }

  @Get(':id/timeline')
  @ApiOperation({
    summary: 'Audit timeline of the rollout and its devices, oldest first (export: GET /api/v1/audit/export)',
  })
  @ApiQuery({ name: 'limit', required: false, type: Number, description: '1 to 10000, default 1000' })
  @ApiOkResponse({ type: [TimelineEntryDto] })
  @ApiErrors(E.Invalid, E.RolloutNotFound)
  timeline(
    @Param('id') id: string,
    @Query('limit', new ParseIntPipe({ optional: true })) limit?: number,
  ): Promise<TimelineEntryDto[]> {
    return this.rollouts.timeline(id, Math.min(Math.max(limit ?? 1000, 1), 10_000));
  }

  @Post(':id/pause')
  @HttpCode(200)
  @Roles(Role.Operator)
  @ApiOperation({ summary: 'Pause a running rollout: no new dispatches; devices in flight finish and report' })
  @ApiOkResponse({ type: RolloutDto })
  @ApiErrors(E.Invalid, E.Forbidden, E.RolloutNotFound, E.RolloutNotRunning, E.RolloutFinished)
  pause(@Param('id') id: string, @Body() body: RolloutActionDto, @CurrentActor() actor: Actor): Promise<RolloutDto> {
    return this.actions.pause(id, actor, body.reason);
  }

  @Post(':id/resume')
  @HttpCode(200)
  @Roles(Role.Operator)
  @ApiOperation({ summary: 'Resume a paused rollout (a wave that missed its criterion counts as accepted)' })
  @ApiOkResponse({ type: RolloutDto })
  @ApiErrors(E.Invalid, E.Forbidden, E.RolloutNotFound, E.RolloutNotPaused, E.RolloutFinished)
  resume(@Param('id') id: string, @Body() body: RolloutActionDto, @CurrentActor() actor: Actor): Promise<RolloutDto> {
    return this.actions.resume(id, actor, body.reason);
  }

  @Post(':id/cancel')
  @HttpCode(200)
  @Roles(Role.Operator)
  @ApiOperation({ summary: 'Stop for good: devices not dispatched yet are canceled' })
  @ApiOkResponse({ type: RolloutDto })
  @ApiErrors(E.Invalid, E.Forbidden, E.RolloutNotFound, E.RolloutFinished)
  cancel(@Param('id') id: string, @Body() body: RolloutActionDto, @CurrentActor() actor: Actor): Promise<RolloutDto> {
    return this.actions.cancel(id, actor, body.reason);
  }

  @Post(':id/approve')
  @HttpCode(200)
  @Roles(Role.Operator)
  @ApiOperation({ summary: 'Approve the next wave that needs a manual approval' })
  @ApiOkResponse({ type: RolloutDto })
  @ApiErrors(E.Invalid, E.Forbidden, E.RolloutNotFound, E.RolloutFinished, E.NoWaveAwaitingApproval)
  approve(@Param('id') id: string, @Body() body: RolloutActionDto, @CurrentActor() actor: Actor): Promise<RolloutDto> {
    return this.actions.approve(id, actor, body.reason);
  }

  @Post(':id/retry-failed')
  @HttpCode(200)
  @Roles(Role.Operator)
  @ApiOperation({ summary: 'Give failed, rejected, rolled-back and timed-out devices (only) another attempt' })
  @ApiOkResponse({ type: RolloutDto })
  @ApiErrors(E.Invalid, E.Forbidden, E.RolloutNotFound, E.RolloutFinished, E.NoFailedDevices)
  retryFailed(
    @Param('id') id: string,
    @Body() body: RolloutActionDto,
    @CurrentActor() actor: Actor,
  ): Promise<RolloutDto> {
    return this.actions.retryFailed(id, actor, body.reason);
  }
}
