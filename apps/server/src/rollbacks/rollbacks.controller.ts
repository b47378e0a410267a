import { Body, Controller, Get, Param, Post } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiTags } from '@nestjs/swagger';
import { Actor } from '../auth/actor';
import { CurrentActor } from '../auth/current-actor.decorator';
import { Role } from '../auth/role.enum';
import { Roles } from '../auth/roles.decorator';
import { CreateRollbackDto } from './dto/create-rollback.dto';
import { RollbackView, RollbacksService } from './rollbacks.service';

@ApiTags('rollbacks')
@ApiBearerAuth()
@Controller('api/v1/rollbacks')
export class RollbacksController {
  constructor(private readonly rollbacks: RollbacksService) {}

  @Post()
  @Roles(Role.Operator)
  @ApiOperation({ summary: "Switch a device, a tag's devices or a rollout's devices to a snapshot they already hold" })
  create(@Body() body: CreateRollbackDto, @CurrentActor() actor: Actor): Promise<RollbackView> {
    return this.rollbacks.create(body, actor);
  }

  @Get(':id')
  @ApiOperation({ summary: 'A rollback with the outcome per device' })
  get(@Param('id') id: string): Promise<RollbackView> {
    return this.rollbacks.get(id);
  }
}
