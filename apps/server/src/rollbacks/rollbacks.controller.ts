import { Body, Controller, Get, Param, Post } from '@nestjs/common';
import { ApiBearerAuth, ApiCreatedResponse, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { Actor } from '../auth/actor';
import { CurrentActor } from '../auth/current-actor.decorator';
import { Role } from '../auth/role.enum';
import { Roles } from '../auth/roles.decorator';
import { CreateRollbackDto } from './dto/create-rollback.dto';
import { ApiErrors } from '../common/api-errors.decorator';
import { DomainErrorCode as E } from '../common/domain-error';
import { RollbackDto } from './dto/rollback.dto';
import { RollbacksService } from './rollbacks.service';

@ApiTags('rollbacks')
@ApiBearerAuth()
@ApiErrors(E.Unauthorized)
@Controller('api/v1/rollbacks')
export class RollbacksController {
  constructor(private readonly rollbacks: RollbacksService) {}

  @Post()
  @Roles(Role.Operator)
  @ApiOperation({ summary: "Switch a device, a tag's devices or a rollout's devices to a snapshot they already hold" })
  @ApiCreatedResponse({ type: RollbackDto, description: 'the commands are sent; GET it again for the outcomes' })
  @ApiErrors(E.Invalid, E.RollbackTargetInvalid, E.Forbidden, E.DeviceNotFound, E.RolloutNotFound)
  create(@Body() body: CreateRollbackDto, @CurrentActor() actor: Actor): Promise<RollbackDto> {
    return this.rollbacks.create(body, actor);
  }

  @Get(':id')
  @ApiOperation({ summary: 'A rollback with the outcome per device' })
  @ApiOkResponse({ type: RollbackDto })
  @ApiErrors(E.RollbackNotFound)
  get(@Param('id') id: string): Promise<RollbackDto> {
    return this.rollbacks.get(id);
  }
}
