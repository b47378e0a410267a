import { Body, Controller, Get, Param, Post, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiCreatedResponse, ApiOkResponse, ApiTags } from '@nestjs/swagger';
import { Actor } from '../auth/actor';
import { CurrentActor } from '../auth/current-actor.decorator';
import { Role } from '../auth/role.enum';
import { Roles } from '../auth/roles.decorator';
import { ApiErrors } from '../common/api-errors.decorator';
import { DomainErrorCode as E } from '../common/domain-error';
import { CommandDispatcher, CommandRequest } from './command-dispatcher.service';
import { DeviceQueryService } from './device-query.service';
import {
  DeviceCommandDto,
  DeviceCommandPageDto,
  DeviceJobEventDto,
  DeviceJobEventPageDto,
} from './dto/device-command.dto';
import { PageQueryDto } from './dto/list-devices-query.dto';
import { SendCommandDto } from './dto/send-command.dto';

@ApiTags('devices')
@ApiBearerAuth()
@ApiErrors(E.Unauthorized)
@Controller('api/v1/devices/:id')
export class DeviceCommandsController {
  constructor(
    private readonly dispatcher: CommandDispatcher,
    private readonly query: DeviceQueryService,
  ) {}

  /** Sends a command that needs no artifact (switch, commit, delete, reboot, cancel); QoS 1, unique commandId. */
  @Post('commands')
  @Roles(Role.Operator)
  @ApiCreatedResponse({ type: DeviceCommandDto })
  @ApiErrors(E.Invalid, E.CommandInvalid, E.Forbidden, E.DeviceNotFound, E.CommandNotFound, E.DeviceDecommissioned)
  async send(
    @Param('id') id: string,
    @Body() body: SendCommandDto,
    @CurrentActor() actor: Actor,
  ): Promise<DeviceCommandDto> {
    const { type, reboot, ...fields } = body;
    const needsReboot = type === 'switch' || type === 'commit';
    const request = {
      type,
      ...fields,
      ...(needsReboot ? { reboot: reboot ?? { mode: 'now' } } : reboot ? { reboot } : {}),
    };
    return DeviceCommandDto.from(await this.dispatcher.dispatch(id, request as unknown as CommandRequest, actor));
  }

  /** Newest first. */
  @Get('commands')
  @ApiOkResponse({ type: DeviceCommandPageDto })
  @ApiErrors(E.Invalid, E.InvalidCursor, E.DeviceNotFound)
  async commands(@Param('id') id: string, @Query() page: PageQueryDto): Promise<DeviceCommandPageDto> {
    const result = await this.query.commands(id, page.limit ?? 50, page.cursor);
    return { items: result.items.map((command) => DeviceCommandDto.from(command)), nextCursor: result.nextCursor };
  }

  @Get('commands/:commandId')
  @ApiOkResponse({ type: DeviceCommandDto })
  @ApiErrors(E.DeviceNotFound, E.CommandNotFound)
  async command(@Param('id') id: string, @Param('commandId') commandId: string): Promise<DeviceCommandDto> {
    return DeviceCommandDto.from(await this.query.command(id, commandId));
  }

  /** Job events the device reported, newest first. */
  @Get('events')
  @ApiOkResponse({ type: DeviceJobEventPageDto })
  @ApiErrors(E.Invalid, E.InvalidCursor, E.DeviceNotFound)
  async events(@Param('id') id: string, @Query() page: PageQueryDto): Promise<DeviceJobEventPageDto> {
    const result = await this.query.events(id, page.limit ?? 50, page.cursor);
    return { items: result.items.map((event) => DeviceJobEventDto.from(event)), nextCursor: result.nextCursor };
  }
}
